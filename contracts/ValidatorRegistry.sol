// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";
import {IRewardDistributor} from "./interfaces/IRewardDistributor.sol";
import {IValidatorRegistry} from "./interfaces/IValidatorRegistry.sol";

/// @title ValidatorRegistry
/// @notice Validators stake SHOT here; their stake weights (with block-number snapshots) decide
/// whose signatures form a quorum for reward roots, and equivocation on a root costs them their
/// whole bonded stake. The registry is the EIP-712 verifying contract of `EpochRoot` messages.
contract ValidatorRegistry is IValidatorRegistry, EIP712, Ownable2Step {
    using SafeERC20 for IERC20;
    using Checkpoints for Checkpoints.Trace208;
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @inheritdoc IValidatorRegistry
    uint256 public constant MAX_ACTIVE_VALIDATORS = 100;

    /// @inheritdoc IValidatorRegistry
    bytes32 public constant EPOCH_ROOT_TYPEHASH =
        keccak256("EpochRoot(uint64 epoch,bytes32 root,uint256 cumulativeTotal)");

    /// @dev Longest allowed unbonding delay (one year), a guard against a mistyped constructor argument.
    uint256 private constant _MAX_UNBONDING_DELAY = 365 days;

    struct Unbonding {
        uint208 amount;
        uint48 releaseTime;
    }

    IERC20 private immutable _token;
    uint256 private immutable _minStake;
    uint256 private immutable _unbondingDelay;

    address private _rewardDistributor;
    uint256 private _totalBonded;
    Checkpoints.Trace208 private _totalCheckpoints;
    EnumerableSet.AddressSet private _active;
    mapping(address validator => Checkpoints.Trace208) private _stakeCheckpoints;
    mapping(address validator => Unbonding) private _unbonding;
    mapping(address validator => mapping(uint64 epoch => bool)) private _slashed;

    /// @notice Deploys the registry.
    /// @param token_ The staking token (SHOT).
    /// @param minStake_ Smallest positive active stake (non-zero).
    /// @param unbondingDelay_ Seconds from an unstake request to withdrawal (1 second to 365 days); keep it
    /// longer than the RewardDistributor's snapshot look-back plus challenge window so that every signer
    /// of a challengeable root can still be slashed.
    /// @param initialOwner Owner, whose only power is `setRewardDistributor`.
    constructor(IERC20 token_, uint256 minStake_, uint256 unbondingDelay_, address initialOwner)
        EIP712("Shotbank", "1")
        Ownable(initialOwner)
    {
        if (address(token_) == address(0)) revert ValidatorRegistryZeroAddress();
        if (minStake_ == 0 || unbondingDelay_ == 0 || unbondingDelay_ > _MAX_UNBONDING_DELAY) {
            revert ValidatorRegistryInvalidParameter();
        }
        _token = token_;
        _minStake = minStake_;
        _unbondingDelay = unbondingDelay_;
    }

    // ----------------------------------------------------------------------------------------------
    // Administration
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IValidatorRegistry
    function setRewardDistributor(address distributor) external onlyOwner {
        if (distributor == address(0)) revert ValidatorRegistryZeroAddress();
        if (_rewardDistributor != address(0)) {
            revert ValidatorRegistryRewardDistributorAlreadySet(_rewardDistributor);
        }
        _rewardDistributor = distributor;
        emit RewardDistributorSet(distributor);
    }

    // ----------------------------------------------------------------------------------------------
    // Staking
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IValidatorRegistry
    function stake(uint256 amount) external {
        if (amount == 0) revert ValidatorRegistryZeroAmount();
        uint256 newStake = _stakeCheckpoints[msg.sender].latest() + amount;
        if (newStake < _minStake) revert ValidatorRegistryBelowMinStake(newStake, _minStake);
        if (_active.add(msg.sender) && _active.length() > MAX_ACTIVE_VALIDATORS) {
            revert ValidatorRegistryTooManyValidators(MAX_ACTIVE_VALIDATORS);
        }
        _totalBonded += amount;
        _setStake(msg.sender, newStake);
        _pushTotal(_totalCheckpoints.latest() + amount);
        emit Staked(msg.sender, amount, newStake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IValidatorRegistry
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ValidatorRegistryZeroAmount();
        uint256 current = _stakeCheckpoints[msg.sender].latest();
        if (amount > current) revert ValidatorRegistryInsufficientStake(amount, current);
        uint256 remaining;
        // amount <= current was checked just above, so this cannot underflow.
        unchecked {
            remaining = current - amount;
        }
        if (remaining != 0 && remaining < _minStake) revert ValidatorRegistryBelowMinStake(remaining, _minStake);
        // A validator with active stake is always in the set, so removal cannot fail.
        // slither-disable-next-line unused-return
        if (remaining == 0) _active.remove(msg.sender);
        _setStake(msg.sender, remaining);
        _pushTotal(_totalCheckpoints.latest() - amount);
        Unbonding storage unbonding = _unbonding[msg.sender];
        // Active plus unbonding stake of one validator is at most the token supply, far below 2^208.
        uint208 unbondingAmount = unbonding.amount + SafeCast.toUint208(amount);
        uint48 releaseTime = SafeCast.toUint48(block.timestamp + _unbondingDelay);
        unbonding.amount = unbondingAmount;
        unbonding.releaseTime = releaseTime;
        emit UnstakeRequested(msg.sender, amount, unbondingAmount, releaseTime);
    }

    /// @inheritdoc IValidatorRegistry
    function withdraw() external returns (uint256 amount) {
        Unbonding memory unbonding = _unbonding[msg.sender];
        // Zero means "no unbonding entry"; only the validator's own calls or a slash can empty it.
        // slither-disable-next-line incorrect-equality
        if (unbonding.amount == 0) revert ValidatorRegistryNothingToWithdraw();
        if (block.timestamp < unbonding.releaseTime) revert ValidatorRegistryUnbondingNotElapsed(unbonding.releaseTime);
        amount = unbonding.amount;
        delete _unbonding[msg.sender];
        _totalBonded -= amount;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ----------------------------------------------------------------------------------------------
    // Slashing
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IValidatorRegistry
    function slash(uint64 epoch, address validator, SignedEpochRoot calldata first, SignedEpochRoot calldata second)
        external
        returns (uint256 amount)
    {
        checkEquivocation(epoch, validator, first, second);
        address distributor = _rewardDistributor;
        if (distributor == address(0)) revert ValidatorRegistryRewardDistributorNotSet();
        if (_slashed[validator][epoch]) revert ValidatorRegistryAlreadySlashed(validator, epoch);

        uint256 active = _stakeCheckpoints[validator].latest();
        uint256 unbonding = _unbonding[validator].amount;
        amount = active + unbonding;
        if (amount == 0) revert ValidatorRegistryNothingToSlash(validator);

        _slashed[validator][epoch] = true;
        if (active != 0) {
            // A validator with active stake is always in the set, so removal cannot fail.
            // slither-disable-next-line unused-return
            _active.remove(validator);
            _setStake(validator, 0);
            _pushTotal(_totalCheckpoints.latest() - active);
        }
        delete _unbonding[validator];
        _totalBonded -= amount;
        emit Slashed(validator, epoch, amount, msg.sender);

        // The distributor pulls the stake and records it as reward funding.
        _token.forceApprove(distributor, amount);
        IRewardDistributor(distributor).fund(amount);
    }

    /// @inheritdoc IValidatorRegistry
    function checkEquivocation(
        uint64 epoch,
        address validator,
        SignedEpochRoot calldata first,
        SignedEpochRoot calldata second
    ) public view {
        bytes32 digestA = epochRootDigest(epoch, first.root, first.cumulativeTotal);
        bytes32 digestB = epochRootDigest(epoch, second.root, second.cumulativeTotal);
        if (digestA == digestB) revert ValidatorRegistryNotConflicting();
        address signerA = _recover(digestA, first.signature, 0);
        if (signerA != validator) revert ValidatorRegistrySignerMismatch(validator, signerA);
        address signerB = _recover(digestB, second.signature, 1);
        if (signerB != validator) revert ValidatorRegistrySignerMismatch(validator, signerB);
    }

    // ----------------------------------------------------------------------------------------------
    // Signatures and quorum
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IValidatorRegistry
    function verifyEpochRootSignatures(
        uint64 epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 snapshotBlock,
        bytes[] calldata signatures
    ) external view returns (uint256 signedStake, uint256 snapshotTotalStake) {
        uint48 key = _pastBlock(snapshotBlock);
        bytes32 digest = epochRootDigest(epoch, root, cumulativeTotal);
        address previous = address(0);
        uint256 count = signatures.length;
        for (uint256 i = 0; i < count; ++i) {
            address signer = _recover(digest, signatures[i], i);
            if (signer <= previous) revert ValidatorRegistrySignersNotAscending(i, signer);
            uint256 weight = _stakeCheckpoints[signer].upperLookupRecent(key);
            if (weight == 0) revert ValidatorRegistryNotValidatorAtSnapshot(signer, snapshotBlock);
            signedStake += weight;
            previous = signer;
        }
        snapshotTotalStake = _totalCheckpoints.upperLookupRecent(key);
    }

    /// @inheritdoc IValidatorRegistry
    function epochRootDigest(uint64 epoch, bytes32 root, uint256 cumulativeTotal) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(EPOCH_ROOT_TYPEHASH, epoch, root, cumulativeTotal)));
    }

    // ----------------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IValidatorRegistry
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IValidatorRegistry
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc IValidatorRegistry
    function unbondingDelay() external view returns (uint256) {
        return _unbondingDelay;
    }

    /// @inheritdoc IValidatorRegistry
    function rewardDistributor() external view returns (address) {
        return _rewardDistributor;
    }

    /// @inheritdoc IValidatorRegistry
    function stakeOf(address validator) external view returns (uint256) {
        return _stakeCheckpoints[validator].latest();
    }

    /// @inheritdoc IValidatorRegistry
    function stakeAt(address validator, uint256 blockNumber) external view returns (uint256) {
        return _stakeCheckpoints[validator].upperLookupRecent(_pastBlock(blockNumber));
    }

    /// @inheritdoc IValidatorRegistry
    function totalStake() external view returns (uint256) {
        return _totalCheckpoints.latest();
    }

    /// @inheritdoc IValidatorRegistry
    function totalStakeAt(uint256 blockNumber) external view returns (uint256) {
        return _totalCheckpoints.upperLookupRecent(_pastBlock(blockNumber));
    }

    /// @inheritdoc IValidatorRegistry
    function unbondingOf(address validator) external view returns (uint256 amount, uint256 releaseTime) {
        Unbonding memory unbonding = _unbonding[validator];
        return (unbonding.amount, unbonding.releaseTime);
    }

    /// @inheritdoc IValidatorRegistry
    function bondedStakeOf(address validator) external view returns (uint256) {
        return _stakeCheckpoints[validator].latest() + _unbonding[validator].amount;
    }

    /// @inheritdoc IValidatorRegistry
    function totalBonded() external view returns (uint256) {
        return _totalBonded;
    }

    /// @inheritdoc IValidatorRegistry
    function isActiveValidator(address validator) external view returns (bool) {
        return _active.contains(validator);
    }

    /// @inheritdoc IValidatorRegistry
    function activeValidatorCount() external view returns (uint256) {
        return _active.length();
    }

    /// @inheritdoc IValidatorRegistry
    function activeValidators() external view returns (address[] memory validators, uint256[] memory stakes) {
        validators = _active.values();
        stakes = new uint256[](validators.length);
        for (uint256 i = 0; i < validators.length; ++i) {
            stakes[i] = _stakeCheckpoints[validators[i]].latest();
        }
    }

    /// @inheritdoc IValidatorRegistry
    function isSlashed(address validator, uint64 epoch) external view returns (bool) {
        return _slashed[validator][epoch];
    }

    // ----------------------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------------------

    /// @dev Checkpoints.push returns the previous and new values, which the callers already know.
    function _setStake(address validator, uint256 newStake) private {
        // slither-disable-next-line unused-return
        _stakeCheckpoints[validator].push(Time.blockNumber(), SafeCast.toUint208(newStake));
    }

    /// @dev See `_setStake` for the ignored return values.
    function _pushTotal(uint256 newTotal) private {
        // slither-disable-next-line unused-return
        _totalCheckpoints.push(Time.blockNumber(), SafeCast.toUint208(newTotal));
    }

    /// @dev Snapshots are only meaningful for finished blocks: stake can still change in the current one.
    function _pastBlock(uint256 blockNumber) private view returns (uint48) {
        if (blockNumber >= block.number) revert ValidatorRegistryFutureLookup(blockNumber, block.number);
        // blockNumber < block.number, which fits in 48 bits for the foreseeable life of the chain.
        return SafeCast.toUint48(blockNumber);
    }

    function _recover(bytes32 digest, bytes calldata signature, uint256 index) private pure returns (address signer) {
        ECDSA.RecoverError error;
        // The third return value only details the error, which is reported by index instead.
        // slither-disable-next-line unused-return
        (signer, error,) = ECDSA.tryRecover(digest, signature);
        if (error != ECDSA.RecoverError.NoError) revert ValidatorRegistryInvalidSignature(index);
    }
}
