// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title IValidatorRegistry
/// @notice Staking, unbonding, stake snapshots and slashing for Shotbank validators.
/// @dev Stake snapshots are OpenZeppelin `Checkpoints.Trace208` keyed by block number, one per
/// validator (its active stake) and one for the total active stake. The registry is also the
/// EIP-712 verifying contract of `EpochRoot(uint64 epoch,bytes32 root,uint256 cumulativeTotal)`
/// (domain name "Shotbank", version "1"), the message validators co-sign for reward roots.
/// Signing two different `(root, cumulativeTotal)` pairs for one epoch is equivocation: anyone
/// holding both signatures can have the validator's whole bonded stake (active and unbonding)
/// slashed into the RewardDistributor's reward pool.
interface IValidatorRegistry {
    /// @notice One signed `EpochRoot` message (the epoch is given separately).
    /// @param root Merkle root of cumulative earnings.
    /// @param cumulativeTotal Sum of all cumulative amounts in the tree.
    /// @param signature 65-byte `r‖s‖v` signature with low `s`.
    struct SignedEpochRoot {
        bytes32 root;
        uint256 cumulativeTotal;
        bytes signature;
    }

    /// @notice A required address argument was the zero address.
    error ValidatorRegistryZeroAddress();
    /// @notice A zero amount was passed where a positive one is required.
    error ValidatorRegistryZeroAmount();
    /// @notice A constructor parameter is outside its allowed range.
    error ValidatorRegistryInvalidParameter();
    /// @notice `setRewardDistributor` was called after the distributor had been set.
    error ValidatorRegistryRewardDistributorAlreadySet(address current);
    /// @notice Slashing needs the RewardDistributor (the slashed stake's destination) to be set.
    error ValidatorRegistryRewardDistributorNotSet();
    /// @notice The resulting active stake would be positive but below the minimum stake.
    error ValidatorRegistryBelowMinStake(uint256 resultingStake, uint256 minStake);
    /// @notice Joining would take the active set above `MAX_ACTIVE_VALIDATORS`.
    error ValidatorRegistryTooManyValidators(uint256 maxActiveValidators);
    /// @notice More unstaking was requested than the validator's active stake.
    error ValidatorRegistryInsufficientStake(uint256 requested, uint256 activeStake);
    /// @notice The validator has no unbonding stake to withdraw.
    error ValidatorRegistryNothingToWithdraw();
    /// @notice The unbonding delay has not elapsed yet.
    error ValidatorRegistryUnbondingNotElapsed(uint256 releaseTime);
    /// @notice A snapshot lookup named the current or a future block.
    error ValidatorRegistryFutureLookup(uint256 blockNumber, uint256 currentBlock);
    /// @notice Signature number `index` is malformed, has a high `s` value or does not recover.
    error ValidatorRegistryInvalidSignature(uint256 index);
    /// @notice Signers must be strictly ascending by address (which also rules out duplicates).
    error ValidatorRegistrySignersNotAscending(uint256 index, address signer);
    /// @notice A signer had no active stake at the snapshot block.
    error ValidatorRegistryNotValidatorAtSnapshot(address signer, uint256 snapshotBlock);
    /// @notice The two signed messages are identical: no equivocation.
    error ValidatorRegistryNotConflicting();
    /// @notice A signature was not made by the accused validator.
    error ValidatorRegistrySignerMismatch(address expected, address recovered);
    /// @notice The validator was already slashed for this epoch.
    error ValidatorRegistryAlreadySlashed(address validator, uint64 epoch);
    /// @notice The validator has no bonded stake left to slash.
    error ValidatorRegistryNothingToSlash(address validator);

    /// @notice The RewardDistributor receiving slashed stake was set (only ever once).
    event RewardDistributorSet(address indexed rewardDistributor);
    /// @notice `validator` added `amount` to its active stake.
    event Staked(address indexed validator, uint256 amount, uint256 activeStake);
    /// @notice `validator` moved `amount` from active stake to unbonding, withdrawable at `releaseTime`.
    event UnstakeRequested(address indexed validator, uint256 amount, uint256 unbondingAmount, uint256 releaseTime);
    /// @notice `validator` withdrew `amount` of unbonded stake.
    event Withdrawn(address indexed validator, uint256 amount);
    /// @notice `validator` was slashed `amount` for equivocating on `epoch`; the stake funded the reward pool.
    event Slashed(address indexed validator, uint64 indexed epoch, uint256 amount, address indexed reporter);

    /// @notice Most validators that can be active at once (bounds every loop over the set).
    function MAX_ACTIVE_VALIDATORS() external view returns (uint256);

    /// @notice The EIP-712 type hash of `EpochRoot(uint64 epoch,bytes32 root,uint256 cumulativeTotal)`.
    function EPOCH_ROOT_TYPEHASH() external view returns (bytes32);

    /// @notice The staking token (SHOT).
    function token() external view returns (address);

    /// @notice Smallest positive active stake a validator may hold.
    function minStake() external view returns (uint256);

    /// @notice Seconds between an unstake request and the withdrawal it allows.
    function unbondingDelay() external view returns (uint256);

    /// @notice Where slashed stake goes (zero until set).
    function rewardDistributor() external view returns (address);

    /// @notice Sets the RewardDistributor, once. Only the owner.
    /// @param distributor The RewardDistributor contract.
    function setRewardDistributor(address distributor) external;

    /// @notice Adds `amount` SHOT (pulled from the caller, who must have approved it) to the caller's active stake.
    /// @dev The resulting active stake must be at least `minStake`; a new validator joins the active set.
    /// @param amount Amount to stake, in wei.
    function stake(uint256 amount) external;

    /// @notice Moves `amount` of the caller's active stake into unbonding.
    /// @dev The remaining active stake must be zero (the validator leaves the active set) or at least
    /// `minStake`. Each request adds to the unbonding amount and restarts its delay. Unbonding stake
    /// no longer counts for quorums but can still be slashed.
    /// @param amount Amount to unstake, in wei.
    function requestUnstake(uint256 amount) external;

    /// @notice Transfers the caller's whole unbonding stake back once the delay has elapsed.
    /// @return amount The amount withdrawn.
    function withdraw() external returns (uint256 amount);

    /// @notice Slashes `validator`'s whole bonded stake (active and unbonding) for equivocation:
    /// two valid signatures by `validator` over different `EpochRoot` messages for the same `epoch`
    /// (different root or different cumulative total).
    /// @dev Callable by anyone holding the evidence. At most once per (validator, epoch). The slashed
    /// stake is handed to the RewardDistributor through `fund`, so it is recorded as reward funding.
    /// @param epoch The epoch both messages name.
    /// @param validator The accused validator.
    /// @param first The first signed message.
    /// @param second The second signed message.
    /// @return amount The slashed amount.
    function slash(uint64 epoch, address validator, SignedEpochRoot calldata first, SignedEpochRoot calldata second)
        external
        returns (uint256 amount);

    /// @notice Reverts unless the arguments prove that `validator` equivocated on `epoch` (see `slash`).
    /// @param epoch The epoch both messages name.
    /// @param validator The accused validator.
    /// @param first The first signed message.
    /// @param second The second signed message.
    function checkEquivocation(
        uint64 epoch,
        address validator,
        SignedEpochRoot calldata first,
        SignedEpochRoot calldata second
    ) external view;

    /// @notice Recovers the signers of one `EpochRoot` message and sums their stake at `snapshotBlock`.
    /// @dev Reverts on an invalid or high-s signature, on signers not strictly ascending and on a signer
    /// without active stake at the snapshot. `snapshotBlock` must be in the past.
    /// @param epoch Epoch of the message.
    /// @param root Merkle root of cumulative earnings.
    /// @param cumulativeTotal Sum of all cumulative amounts in the tree.
    /// @param snapshotBlock Block whose stake weights count.
    /// @param signatures 65-byte signatures ordered by strictly ascending signer address.
    /// @return signedStake Sum of the signers' active stake at `snapshotBlock`.
    /// @return snapshotTotalStake Total active stake at `snapshotBlock`.
    function verifyEpochRootSignatures(
        uint64 epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 snapshotBlock,
        bytes[] calldata signatures
    ) external view returns (uint256 signedStake, uint256 snapshotTotalStake);

    /// @notice The EIP-712 digest validators sign for an epoch root.
    /// @param epoch Epoch number.
    /// @param root Merkle root of cumulative earnings.
    /// @param cumulativeTotal Sum of all cumulative amounts in the tree.
    function epochRootDigest(uint64 epoch, bytes32 root, uint256 cumulativeTotal) external view returns (bytes32);

    /// @notice Active stake of `validator` now.
    /// @param validator The validator.
    function stakeOf(address validator) external view returns (uint256);

    /// @notice Active stake of `validator` at the end of past block `blockNumber`.
    /// @param validator The validator.
    /// @param blockNumber A block before the current one.
    function stakeAt(address validator, uint256 blockNumber) external view returns (uint256);

    /// @notice Total active stake now.
    function totalStake() external view returns (uint256);

    /// @notice Total active stake at the end of past block `blockNumber`.
    /// @param blockNumber A block before the current one.
    function totalStakeAt(uint256 blockNumber) external view returns (uint256);

    /// @notice Stake of `validator` in unbonding and when it becomes withdrawable.
    /// @param validator The validator.
    /// @return amount Unbonding amount.
    /// @return releaseTime Timestamp from which `withdraw` succeeds (zero when nothing unbonds).
    function unbondingOf(address validator) external view returns (uint256 amount, uint256 releaseTime);

    /// @notice Active plus unbonding stake of `validator`: what a slash would take.
    /// @param validator The validator.
    function bondedStakeOf(address validator) external view returns (uint256);

    /// @notice Active plus unbonding stake of all validators (equals the registry's token balance
    /// unless tokens were sent to it directly).
    function totalBonded() external view returns (uint256);

    /// @notice Whether `validator` is in the active set.
    /// @param validator The validator.
    function isActiveValidator(address validator) external view returns (bool);

    /// @notice Number of active validators.
    function activeValidatorCount() external view returns (uint256);

    /// @notice The active validators and their active stake, in set order.
    /// @return validators Addresses of the active validators.
    /// @return stakes Active stake of each, same order.
    function activeValidators() external view returns (address[] memory validators, uint256[] memory stakes);

    /// @notice Whether `validator` was already slashed for `epoch`.
    /// @param validator The validator.
    /// @param epoch The epoch.
    function isSlashed(address validator, uint64 epoch) external view returns (bool);
}
