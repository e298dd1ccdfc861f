// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IShotToken} from "./interfaces/IShotToken.sol";

/// @title ShotToken
/// @notice SHOT, the Shotbank token: ERC-20 with ERC-2612 permit. A genesis supply goes to the
/// treasury at construction; after that new supply only comes from a linear emission schedule
/// (`emissionRatePerSecond` from deployment, capped at `MAX_SUPPLY - genesisSupply`) that only
/// the RewardDistributor, set once by the owner, can mint.
contract ShotToken is IShotToken, ERC20, ERC20Permit, Ownable2Step {
    /// @inheritdoc IShotToken
    uint256 public constant MAX_SUPPLY = 1_000_000_000 ether;

    uint256 private immutable _genesisSupply;
    uint256 private immutable _emissionStart;
    uint256 private immutable _emissionRatePerSecond;

    uint256 private _emissionMinted;
    address private _rewardDistributor;

    /// @notice Deploys SHOT and mints the genesis supply.
    /// @param treasury Receiver of the genesis supply.
    /// @param genesisSupply_ Genesis supply in wei (at most `MAX_SUPPLY`).
    /// @param emissionRatePerSecond_ Emission per second in wei (at most `MAX_SUPPLY - genesisSupply_`).
    /// @param initialOwner Owner, whose only power is `setRewardDistributor`.
    constructor(address treasury, uint256 genesisSupply_, uint256 emissionRatePerSecond_, address initialOwner)
        ERC20("Shotbank Token", "SHOT")
        ERC20Permit("Shotbank Token")
        Ownable(initialOwner)
    {
        if (treasury == address(0)) revert ShotTokenZeroAddress();
        if (genesisSupply_ > MAX_SUPPLY) revert ShotTokenGenesisExceedsCap(genesisSupply_, MAX_SUPPLY);
        uint256 cap = MAX_SUPPLY - genesisSupply_;
        if (emissionRatePerSecond_ > cap) revert ShotTokenEmissionRateTooHigh(emissionRatePerSecond_, cap);
        _genesisSupply = genesisSupply_;
        _emissionStart = block.timestamp;
        _emissionRatePerSecond = emissionRatePerSecond_;
        _mint(treasury, genesisSupply_);
    }

    /// @inheritdoc IShotToken
    function setRewardDistributor(address distributor) external onlyOwner {
        if (distributor == address(0)) revert ShotTokenZeroAddress();
        if (_rewardDistributor != address(0)) revert ShotTokenRewardDistributorAlreadySet(_rewardDistributor);
        _rewardDistributor = distributor;
        emit RewardDistributorSet(distributor);
    }

    /// @inheritdoc IShotToken
    function mintEmission(address to, uint256 amount) external {
        if (msg.sender != _rewardDistributor) revert ShotTokenUnauthorizedMinter(msg.sender);
        uint256 releasable = releasableEmission();
        if (amount > releasable) revert ShotTokenEmissionExceedsReleasable(amount, releasable);
        // `amount <= releasable <= emissionCap - _emissionMinted`, so the sum stays <= emissionCap.
        uint256 minted = _emissionMinted + amount;
        _emissionMinted = minted;
        _mint(to, amount);
        emit EmissionMinted(to, amount, minted);
    }

    /// @inheritdoc IShotToken
    function genesisSupply() external view returns (uint256) {
        return _genesisSupply;
    }

    /// @inheritdoc IShotToken
    function emissionStart() external view returns (uint256) {
        return _emissionStart;
    }

    /// @inheritdoc IShotToken
    function emissionRatePerSecond() external view returns (uint256) {
        return _emissionRatePerSecond;
    }

    /// @inheritdoc IShotToken
    function emissionMinted() external view returns (uint256) {
        return _emissionMinted;
    }

    /// @inheritdoc IShotToken
    function rewardDistributor() external view returns (address) {
        return _rewardDistributor;
    }

    /// @inheritdoc IShotToken
    function emissionCap() public view returns (uint256) {
        return MAX_SUPPLY - _genesisSupply;
    }

    /// @inheritdoc IShotToken
    function scheduledEmission(uint256 timestamp) public view returns (uint256) {
        if (timestamp <= _emissionStart || _emissionRatePerSecond == 0) return 0;
        uint256 elapsed = timestamp - _emissionStart;
        uint256 cap = emissionCap();
        // elapsed > floor(cap / rate) implies rate * elapsed > cap; testing it first also keeps the
        // multiplication below from overflowing for far-future timestamps.
        if (elapsed > cap / _emissionRatePerSecond) return cap;
        return _emissionRatePerSecond * elapsed;
    }

    /// @inheritdoc IShotToken
    function releasableEmission() public view returns (uint256) {
        // scheduledEmission is non-decreasing in time and `_emissionMinted` never exceeds its past value.
        return scheduledEmission(block.timestamp) - _emissionMinted;
    }
}
