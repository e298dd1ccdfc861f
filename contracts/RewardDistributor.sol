// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IRewardDistributor} from "./interfaces/IRewardDistributor.sol";
import {IShotToken} from "./interfaces/IShotToken.sol";
import {IValidatorRegistry} from "./interfaces/IValidatorRegistry.sol";
import {RewardLeaf} from "./libraries/RewardLeaf.sol";

/// @title RewardDistributor
/// @notice Holds the reward pool and pays contributors and validators against validator-signed
/// Merkle roots of cumulative earnings (see IRewardDistributor for the root lifecycle).
/// @dev Storage is laid out for the claim path: one slot (`_ledger`) holds the funding total, the end
/// of the pending root's challenge window and the pause flag, so a claim reads that slot, one root slot
/// and the account's claimed amount, and writes only the latter. The pause flag lives there instead of
/// in OpenZeppelin's Pausable (which would cost a separate cold slot on every claim). Payouts are not
/// summed in storage: the pool only receives tokens through `fund` and `drawEmission` (both recorded in
/// `totalFunded`) and pays claims from its balance, so the total paid out is `totalFunded - balance`
/// and can never exceed `totalFunded` (tokens sent without `fund` are not funding and are not counted).
contract RewardDistributor is IRewardDistributor, AccessControl {
    using SafeERC20 for IERC20;

    /// @inheritdoc IRewardDistributor
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @inheritdoc IRewardDistributor
    uint256 public constant QUORUM_NUMERATOR = 2;
    /// @inheritdoc IRewardDistributor
    uint256 public constant QUORUM_DENOMINATOR = 3;

    /// @dev Bounds on the constructor's durations, guards against mistyped deployments.
    uint256 private constant _MIN_CHALLENGE_WINDOW = 1 minutes;
    uint256 private constant _MAX_CHALLENGE_WINDOW = 30 days;
    uint256 private constant _MAX_SNAPSHOT_AGE = 50_000;

    /// @dev The claim-path slot. The funding total fits in 104 bits: 2e31 wei is 20,000 times SHOT's
    /// maximum supply. `pendingClaimableAt` is zero when no root is Pending (none, promoted, vetoed or
    /// cancelled).
    struct Ledger {
        uint104 totalFunded;
        uint40 pendingClaimableAt;
        bool paused;
    }

    /// @dev `lastEpoch` is the latest submission (the Pending one while `pendingClaimableAt != 0`);
    /// `claimableEpoch` is the root that was claimable before it.
    struct Head {
        uint64 lastEpoch;
        uint64 claimableEpoch;
    }

    IERC20 private immutable _token;
    IValidatorRegistry private immutable _registry;
    uint256 private immutable _challengeWindow;
    uint256 private immutable _maxSnapshotAge;

    Ledger private _ledger;
    Head private _head;
    bytes32 private _pendingRoot;
    bytes32 private _claimableRoot;
    mapping(uint64 epoch => EpochRoot) private _roots;
    mapping(address account => uint256) private _claimed;

    /// @notice Deploys the distributor.
    /// @param token_ The reward token (SHOT).
    /// @param registry_ The ValidatorRegistry.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (grants roles; may veto and pause too).
    /// @param guardian Holder of GUARDIAN_ROLE (veto, pause); may be the admin.
    /// @param challengeWindow_ Seconds a root stays Pending (1 minute to 30 days).
    /// @param maxSnapshotAge_ Oldest allowed snapshot, in blocks back from submission (1 to 50,000).
    constructor(
        IERC20 token_,
        IValidatorRegistry registry_,
        address admin,
        address guardian,
        uint256 challengeWindow_,
        uint256 maxSnapshotAge_
    ) {
        if (address(token_) == address(0) || address(registry_) == address(0)) revert RewardDistributorZeroAddress();
        if (admin == address(0) || guardian == address(0)) revert RewardDistributorZeroAddress();
        if (challengeWindow_ < _MIN_CHALLENGE_WINDOW || challengeWindow_ > _MAX_CHALLENGE_WINDOW) {
            revert RewardDistributorInvalidParameter();
        }
        if (maxSnapshotAge_ == 0 || maxSnapshotAge_ > _MAX_SNAPSHOT_AGE) revert RewardDistributorInvalidParameter();
        _token = token_;
        _registry = registry_;
        _challengeWindow = challengeWindow_;
        _maxSnapshotAge = maxSnapshotAge_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GUARDIAN_ROLE, guardian);
    }

    /// @dev Vetoes and pausing: the guardian, or the admin who can always act as guardian.
    modifier onlyGuardian() {
        if (!hasRole(GUARDIAN_ROLE, msg.sender) && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert RewardDistributorUnauthorized(msg.sender);
        }
        _;
    }

    // ----------------------------------------------------------------------------------------------
    // Roots
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IRewardDistributor
    function submitRoot(
        uint64 epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 snapshotBlock,
        bytes[] calldata signatures
    ) external {
        Ledger memory ledger = _ledger;
        if (ledger.paused) revert RewardDistributorPaused();
        Head memory head = _head;
        if (epoch <= head.lastEpoch) revert RewardDistributorEpochNotIncreasing(epoch, head.lastEpoch);
        if (ledger.pendingClaimableAt != 0) {
            if (block.timestamp < ledger.pendingClaimableAt) revert RewardDistributorRootPending(head.lastEpoch);
            // The previous root survived its window: it becomes the fallback for claims.
            _claimableRoot = _pendingRoot;
            head.claimableEpoch = head.lastEpoch;
        }
        if (root == bytes32(0)) revert RewardDistributorZeroRoot();
        if (snapshotBlock >= block.number || block.number - snapshotBlock > _maxSnapshotAge) {
            revert RewardDistributorInvalidSnapshot(snapshotBlock);
        }
        if (cumulativeTotal > ledger.totalFunded) {
            revert RewardDistributorInsufficientFunding(cumulativeTotal, ledger.totalFunded);
        }
        (uint256 signedStake, uint256 totalStake) =
            _registry.verifyEpochRootSignatures(epoch, root, cumulativeTotal, snapshotBlock, signatures);
        // Stakes are below 2^208, so neither product can overflow.
        if (totalStake == 0 || signedStake * QUORUM_DENOMINATOR < totalStake * QUORUM_NUMERATOR) {
            revert RewardDistributorQuorumNotReached(signedStake, totalStake);
        }

        uint40 claimableAt = SafeCast.toUint40(block.timestamp + _challengeWindow);
        head.lastEpoch = epoch;
        _head = head;
        _pendingRoot = root;
        _ledger.pendingClaimableAt = claimableAt;
        // cumulativeTotal <= totalFunded < 2^104 and snapshotBlock < block.number < 2^48: both casts are lossless.
        _roots[epoch] = EpochRoot({
            root: root,
            cumulativeTotal: uint128(cumulativeTotal),
            snapshotBlock: uint48(snapshotBlock),
            claimableAt: claimableAt,
            status: RootStatus.Pending
        });
        emit RootSubmitted(epoch, root, cumulativeTotal, snapshotBlock, claimableAt, signedStake, totalStake);
    }

    /// @inheritdoc IRewardDistributor
    function veto(uint64 epoch) external onlyGuardian {
        _requireChallengeable(epoch);
        _roots[epoch].status = RootStatus.Vetoed;
        _ledger.pendingClaimableAt = 0;
        emit RootVetoed(epoch, msg.sender);
    }

    /// @inheritdoc IRewardDistributor
    function challenge(
        uint64 epoch,
        address validator,
        bytes32 conflictingRoot,
        uint256 conflictingTotal,
        bytes calldata signatureOverPendingRoot,
        bytes calldata signatureOverConflictingRoot
    ) external {
        EpochRoot storage pending = _requireChallengeable(epoch);
        if (_registry.stakeAt(validator, pending.snapshotBlock) == 0) {
            revert RewardDistributorNotValidatorAtSnapshot(validator);
        }
        IValidatorRegistry.SignedEpochRoot memory signedPending =
            IValidatorRegistry.SignedEpochRoot(pending.root, pending.cumulativeTotal, signatureOverPendingRoot);
        IValidatorRegistry.SignedEpochRoot memory signedConflicting =
            IValidatorRegistry.SignedEpochRoot(conflictingRoot, conflictingTotal, signatureOverConflictingRoot);

        pending.status = RootStatus.Cancelled;
        _ledger.pendingClaimableAt = 0;
        emit RootChallenged(epoch, validator, msg.sender);

        // Both paths verify the evidence; only the first slashes (the registry slashes once per epoch
        // and has nothing to take from a validator whose stake is already gone).
        if (!_registry.isSlashed(validator, epoch) && _registry.bondedStakeOf(validator) != 0) {
            // The slashed amount is reported by the registry's Slashed event and the Funded event.
            // slither-disable-next-line unused-return
            _registry.slash(epoch, validator, signedPending, signedConflicting);
        } else {
            _registry.checkEquivocation(epoch, validator, signedPending, signedConflicting);
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Claims
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IRewardDistributor
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        Ledger storage ledger = _ledger;
        if (ledger.paused) revert RewardDistributorPaused();
        uint256 claimableAt = ledger.pendingClaimableAt;
        uint256 alreadyClaimed = _claimed[account];
        if (cumulativeAmount <= alreadyClaimed) {
            revert RewardDistributorNothingToClaim(account, cumulativeAmount, alreadyClaimed);
        }
        bytes32 root = (claimableAt != 0 && block.timestamp >= claimableAt) ? _pendingRoot : _claimableRoot;
        if (root == bytes32(0)) revert RewardDistributorNoClaimableRoot();
        if (!RewardLeaf.verify(proof, root, RewardLeaf.hash(account, cumulativeAmount))) {
            revert RewardDistributorInvalidProof();
        }

        // cumulativeAmount > alreadyClaimed was checked above, so this cannot underflow.
        unchecked {
            amount = cumulativeAmount - alreadyClaimed;
        }
        _claimed[account] = cumulativeAmount;
        emit Claimed(account, amount);
        _token.safeTransfer(account, amount);
    }

    // ----------------------------------------------------------------------------------------------
    // Funding
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IRewardDistributor
    function fund(uint256 amount) external {
        if (amount == 0) revert RewardDistributorZeroAmount();
        _addFunding(msg.sender, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IRewardDistributor
    function drawEmission() external returns (uint256 amount) {
        IShotToken token_ = IShotToken(address(_token));
        amount = token_.releasableEmission();
        if (amount == 0) revert RewardDistributorNoEmission();
        _addFunding(address(_token), amount);
        token_.mintEmission(address(this), amount);
    }

    // ----------------------------------------------------------------------------------------------
    // Pause
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IRewardDistributor
    function pause() external onlyGuardian {
        if (_ledger.paused) revert RewardDistributorPaused();
        _ledger.paused = true;
        emit Paused(msg.sender);
    }

    /// @inheritdoc IRewardDistributor
    function unpause() external onlyGuardian {
        if (!_ledger.paused) revert RewardDistributorNotPaused();
        _ledger.paused = false;
        emit Unpaused(msg.sender);
    }

    // ----------------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IRewardDistributor
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IRewardDistributor
    function registry() external view returns (address) {
        return address(_registry);
    }

    /// @inheritdoc IRewardDistributor
    function challengeWindow() external view returns (uint256) {
        return _challengeWindow;
    }

    /// @inheritdoc IRewardDistributor
    function maxSnapshotAge() external view returns (uint256) {
        return _maxSnapshotAge;
    }

    /// @inheritdoc IRewardDistributor
    function paused() external view returns (bool) {
        return _ledger.paused;
    }

    /// @inheritdoc IRewardDistributor
    function totalFunded() external view returns (uint256) {
        return _ledger.totalFunded;
    }

    /// @inheritdoc IRewardDistributor
    function totalClaimed() external view returns (uint256) {
        uint256 funded = _ledger.totalFunded;
        uint256 balance = _token.balanceOf(address(this));
        // Tokens sent without `fund` raise the balance without counting as funding.
        return balance >= funded ? 0 : funded - balance;
    }

    /// @inheritdoc IRewardDistributor
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @inheritdoc IRewardDistributor
    function lastEpoch() external view returns (uint64) {
        return _head.lastEpoch;
    }

    /// @inheritdoc IRewardDistributor
    function claimableEpoch() public view returns (uint64) {
        return _pendingIsClaimable() ? _head.lastEpoch : _head.claimableEpoch;
    }

    /// @inheritdoc IRewardDistributor
    function claimableRoot() external view returns (bytes32) {
        return _pendingIsClaimable() ? _pendingRoot : _claimableRoot;
    }

    /// @inheritdoc IRewardDistributor
    function rootStatus(uint64 epoch) external view returns (RootStatus) {
        EpochRoot storage record = _roots[epoch];
        RootStatus status = record.status;
        if (status != RootStatus.Pending) return status;
        if (block.timestamp < record.claimableAt) return RootStatus.Pending;
        return epoch == claimableEpoch() ? RootStatus.Claimable : RootStatus.Superseded;
    }

    /// @inheritdoc IRewardDistributor
    function epochRoot(uint64 epoch) external view returns (EpochRoot memory) {
        return _roots[epoch];
    }

    // ----------------------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------------------

    function _pendingIsClaimable() private view returns (bool) {
        uint256 claimableAt = _ledger.pendingClaimableAt;
        return claimableAt != 0 && block.timestamp >= claimableAt;
    }

    /// @dev Returns the record of `epoch` if it is the Pending root and its window is still open.
    function _requireChallengeable(uint64 epoch) private view returns (EpochRoot storage record) {
        // No Pending root is stored as claimableAt == 0, which `block.timestamp >= claimableAt` also rejects.
        if (epoch != _head.lastEpoch || block.timestamp >= _ledger.pendingClaimableAt) {
            revert RewardDistributorNotChallengeable(epoch);
        }
        record = _roots[epoch];
    }

    function _addFunding(address source, uint256 amount) private {
        uint256 newTotal = uint256(_ledger.totalFunded) + amount;
        _ledger.totalFunded = SafeCast.toUint104(newTotal);
        emit Funded(source, amount, newTotal);
    }
}
