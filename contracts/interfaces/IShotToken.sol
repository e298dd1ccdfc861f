// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title IShotToken
/// @notice Emission surface of the Shotbank token (SHOT). The ERC-20 and ERC-2612 surfaces are the
/// standard OpenZeppelin ones. New supply exists only through a linear emission schedule that the
/// RewardDistributor (set once) draws from; total supply never exceeds `MAX_SUPPLY`.
interface IShotToken {
    /// @notice The genesis supply is larger than `MAX_SUPPLY`.
    error ShotTokenGenesisExceedsCap(uint256 genesisSupply, uint256 maxSupply);
    /// @notice The emission rate could let the schedule overflow (rate above the emission cap).
    error ShotTokenEmissionRateTooHigh(uint256 ratePerSecond, uint256 emissionCap);
    /// @notice A required address argument was the zero address.
    error ShotTokenZeroAddress();
    /// @notice `setRewardDistributor` was called after the distributor had been set.
    error ShotTokenRewardDistributorAlreadySet(address current);
    /// @notice Only the RewardDistributor may draw emission.
    error ShotTokenUnauthorizedMinter(address caller);
    /// @notice More emission was requested than the schedule has released so far.
    error ShotTokenEmissionExceedsReleasable(uint256 requested, uint256 releasable);

    /// @notice The RewardDistributor allowed to draw emission was set (only ever once).
    event RewardDistributorSet(address indexed rewardDistributor);
    /// @notice `amount` of scheduled emission was minted to `to`.
    event EmissionMinted(address indexed to, uint256 amount, uint256 totalEmissionMinted);

    /// @notice Hard cap on total supply (genesis plus all emission), in wei.
    function MAX_SUPPLY() external view returns (uint256);

    /// @notice Supply minted to the treasury at construction.
    function genesisSupply() external view returns (uint256);

    /// @notice Timestamp from which the emission schedule accrues.
    function emissionStart() external view returns (uint256);

    /// @notice Emission released per second by the schedule, in wei.
    function emissionRatePerSecond() external view returns (uint256);

    /// @notice Most emission that can ever be minted: `MAX_SUPPLY - genesisSupply`.
    function emissionCap() external view returns (uint256);

    /// @notice Emission released by the schedule up to `timestamp` (capped by `emissionCap`).
    /// @param timestamp A unix timestamp; before `emissionStart` the schedule is zero.
    function scheduledEmission(uint256 timestamp) external view returns (uint256);

    /// @notice Emission minted so far.
    function emissionMinted() external view returns (uint256);

    /// @notice Emission the RewardDistributor may mint now: `scheduledEmission(now) - emissionMinted()`.
    function releasableEmission() external view returns (uint256);

    /// @notice The only address allowed to mint emission (zero until set).
    function rewardDistributor() external view returns (address);

    /// @notice Sets the RewardDistributor, once. Only the owner.
    /// @param distributor The RewardDistributor contract.
    function setRewardDistributor(address distributor) external;

    /// @notice Mints released emission. Only the RewardDistributor.
    /// @param to Recipient of the new tokens.
    /// @param amount Amount to mint; at most `releasableEmission()`.
    function mintEmission(address to, uint256 amount) external;
}
