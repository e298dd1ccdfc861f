// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title IRewardDistributor
/// @notice Per-epoch Merkle roots of cumulative earnings, co-signed by validators, with a challenge
/// window before a root becomes claimable.
/// @dev Lifecycle of a root: `submitRoot` (needs EIP-712 signatures of validators holding at least
/// 2/3 of the active stake at a snapshot block) makes it Pending; during the challenge window the
/// guardian may veto it and anyone may cancel it with proof that one of its signers equivocated;
/// once the window has passed it is Claimable and claims verify against it until a newer root
/// becomes Claimable (the older one is then Superseded). Epoch numbers strictly increase over all
/// submissions, cancelled and vetoed ones included, so a corrected root always carries a new epoch
/// number and honest validators never sign two roots for one epoch. A new root can be submitted
/// only when no root is Pending. Leaves use OpenZeppelin StandardMerkleTree encoding of
/// `(address account, uint256 cumulativeAmount)`.
interface IRewardDistributor {
    /// @notice Status of an epoch's root.
    enum RootStatus {
        None,
        Pending,
        Claimable,
        Superseded,
        Vetoed,
        Cancelled
    }

    /// @notice Stored record of a submitted root.
    /// @param root Merkle root.
    /// @param cumulativeTotal Sum of all cumulative amounts in the tree.
    /// @param snapshotBlock Block whose stake weights formed the quorum.
    /// @param claimableAt Timestamp at which the challenge window ends.
    /// @param status Stored status: None, Pending (Claimable/Superseded are derived), Vetoed or Cancelled.
    struct EpochRoot {
        bytes32 root;
        uint128 cumulativeTotal;
        uint48 snapshotBlock;
        uint40 claimableAt;
        RootStatus status;
    }

    /// @notice A required address argument was the zero address.
    error RewardDistributorZeroAddress();
    /// @notice A zero amount was passed where a positive one is required.
    error RewardDistributorZeroAmount();
    /// @notice A constructor parameter is outside its allowed range.
    error RewardDistributorInvalidParameter();
    /// @notice Claims and submissions are paused.
    error RewardDistributorPaused();
    /// @notice `unpause` was called while not paused.
    error RewardDistributorNotPaused();
    /// @notice The caller is neither guardian nor admin.
    error RewardDistributorUnauthorized(address caller);
    /// @notice Epochs must strictly increase over all submissions.
    error RewardDistributorEpochNotIncreasing(uint64 epoch, uint64 lastEpoch);
    /// @notice A root is still inside its challenge window.
    error RewardDistributorRootPending(uint64 pendingEpoch);
    /// @notice The zero root cannot be submitted.
    error RewardDistributorZeroRoot();
    /// @notice The snapshot block is not in the past or older than `maxSnapshotAge` blocks.
    error RewardDistributorInvalidSnapshot(uint256 snapshotBlock);
    /// @notice The root's cumulative total exceeds the total funded.
    error RewardDistributorInsufficientFunding(uint256 cumulativeTotal, uint256 totalFunded);
    /// @notice The signers hold less than 2/3 of the active stake at the snapshot (or there is none).
    error RewardDistributorQuorumNotReached(uint256 signedStake, uint256 totalStake);
    /// @notice The epoch has no root inside its challenge window.
    error RewardDistributorNotChallengeable(uint64 epoch);
    /// @notice The accused validator had no stake at the root's snapshot block.
    error RewardDistributorNotValidatorAtSnapshot(address validator);
    /// @notice No root is claimable yet.
    error RewardDistributorNoClaimableRoot();
    /// @notice The Merkle proof does not prove `(account, cumulativeAmount)` under the claimable root.
    error RewardDistributorInvalidProof();
    /// @notice `account` already claimed `cumulativeAmount` or more.
    error RewardDistributorNothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);
    /// @notice The token has no emission released to draw.
    error RewardDistributorNoEmission();

    /// @notice The reward pool was funded with `amount` by `source` (market, registry for slashed
    /// stake, the token for emission, or anyone else).
    event Funded(address indexed source, uint256 amount, uint256 totalFunded);
    /// @notice A root was accepted as Pending.
    event RootSubmitted(
        uint64 indexed epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 snapshotBlock,
        uint256 claimableAt,
        uint256 signedStake,
        uint256 totalStake
    );
    /// @notice A Pending root was vetoed by the guardian.
    event RootVetoed(uint64 indexed epoch, address indexed guardian);
    /// @notice A Pending root was cancelled because `validator`, one of its signers, equivocated.
    event RootChallenged(uint64 indexed epoch, address indexed validator, address indexed challenger);
    /// @notice `account` was paid `amount` (its cumulative claimed amount is `claimed(account)`).
    event Claimed(address indexed account, uint256 amount);
    /// @notice Claims and submissions were paused.
    event Paused(address indexed account);
    /// @notice Claims and submissions were resumed.
    event Unpaused(address indexed account);

    /// @notice Role allowed to veto Pending roots and to pause/unpause (the admin may too).
    function GUARDIAN_ROLE() external view returns (bytes32);

    /// @notice Quorum numerator: signers need `QUORUM_NUMERATOR / QUORUM_DENOMINATOR` of the stake.
    function QUORUM_NUMERATOR() external view returns (uint256);

    /// @notice Quorum denominator.
    function QUORUM_DENOMINATOR() external view returns (uint256);

    /// @notice The reward token (SHOT).
    function token() external view returns (address);

    /// @notice The ValidatorRegistry giving stake weights and the EIP-712 domain.
    function registry() external view returns (address);

    /// @notice Seconds between a root's submission and the moment it becomes claimable.
    function challengeWindow() external view returns (uint256);

    /// @notice Oldest allowed snapshot block, counted back from the submission block.
    function maxSnapshotAge() external view returns (uint256);

    /// @notice Submits the root of epoch `epoch` with validator signatures over
    /// `EpochRoot(epoch, root, cumulativeTotal)`. Anyone may submit.
    /// @dev Signatures are 65-byte `r‖s‖v` (low s), ordered by strictly ascending signer address; the
    /// signers' active stake at `snapshotBlock` must be at least 2/3 of the total then.
    /// `snapshotBlock` must be before the current block and at most `maxSnapshotAge` blocks old.
    /// `cumulativeTotal` must not exceed `totalFunded()`. Not while paused.
    /// @param epoch Epoch number, greater than every epoch submitted before.
    /// @param root Merkle root (StandardMerkleTree, leaves `(address, uint256)`).
    /// @param cumulativeTotal Sum of all cumulative amounts in the tree.
    /// @param snapshotBlock Block whose stake weights count.
    /// @param signatures The validators' signatures.
    function submitRoot(
        uint64 epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 snapshotBlock,
        bytes[] calldata signatures
    ) external;

    /// @notice Vetoes the Pending root of `epoch` during its challenge window. Guardian or admin only.
    /// @param epoch The epoch of the Pending root.
    function veto(uint64 epoch) external;

    /// @notice Cancels the Pending root of `epoch` by proving that `validator` signed it and also signed
    /// a conflicting root for the same epoch; slashes `validator` through the registry (unless it was
    /// already slashed for this epoch). Anyone may call during the challenge window, also while paused.
    /// @param epoch The epoch of the Pending root.
    /// @param validator The equivocating validator; it must have had stake at the root's snapshot block.
    /// @param conflictingRoot The other root `validator` signed for `epoch`.
    /// @param conflictingTotal The cumulative total of the other message.
    /// @param signatureOverPendingRoot `validator`'s signature over the Pending root's message.
    /// @param signatureOverConflictingRoot `validator`'s signature over the conflicting message.
    function challenge(
        uint64 epoch,
        address validator,
        bytes32 conflictingRoot,
        uint256 conflictingTotal,
        bytes calldata signatureOverPendingRoot,
        bytes calldata signatureOverConflictingRoot
    ) external;

    /// @notice Pays `account` the difference between `cumulativeAmount` and what it already claimed.
    /// @dev Anyone may call; the tokens always go to `account`. Verifies against the claimable root.
    /// Not while paused.
    /// @param account The leaf's account (beneficiary).
    /// @param cumulativeAmount The leaf's cumulative amount.
    /// @param proof Merkle proof of the leaf under the claimable root.
    /// @return amount The amount paid.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        returns (uint256 amount);

    /// @notice Adds `amount` SHOT, pulled from the caller (approve first), to the reward pool.
    /// @param amount Amount to add, in wei.
    function fund(uint256 amount) external;

    /// @notice Mints all emission the token has released into the reward pool. Anyone may call.
    /// @return amount The amount drawn.
    function drawEmission() external returns (uint256 amount);

    /// @notice Pauses claims and root submissions. Guardian or admin only.
    function pause() external;

    /// @notice Resumes claims and root submissions. Guardian or admin only.
    function unpause() external;

    /// @notice Whether claims and submissions are paused.
    function paused() external view returns (bool);

    /// @notice Total SHOT added to the reward pool, from every source.
    function totalFunded() external view returns (uint256);

    /// @notice Total SHOT paid out by claims: `totalFunded()` minus the pool's token balance (claims are
    /// the only outflow). Tokens transferred to the distributor without `fund` are not funding and make
    /// this figure smaller by their amount (never below zero).
    function totalClaimed() external view returns (uint256);

    /// @notice Cumulative amount already paid to `account`.
    /// @param account The account.
    function claimed(address account) external view returns (uint256);

    /// @notice Highest epoch submitted so far (zero before the first submission).
    function lastEpoch() external view returns (uint64);

    /// @notice The epoch whose root claims verify against now (zero when none).
    function claimableEpoch() external view returns (uint64);

    /// @notice The root claims verify against now (zero when none).
    function claimableRoot() external view returns (bytes32);

    /// @notice Status of the root submitted for `epoch`.
    /// @param epoch The epoch.
    function rootStatus(uint64 epoch) external view returns (RootStatus);

    /// @notice Stored record of the root submitted for `epoch` (all zero when none).
    /// @param epoch The epoch.
    function epochRoot(uint64 epoch) external view returns (EpochRoot memory);
}
