// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {DatasetMarket} from "../../../contracts/DatasetMarket.sol";
import {RewardDistributor} from "../../../contracts/RewardDistributor.sol";
import {ShotToken} from "../../../contracts/ShotToken.sol";
import {ValidatorRegistry} from "../../../contracts/ValidatorRegistry.sol";
import {IValidatorRegistry} from "../../../contracts/interfaces/IValidatorRegistry.sol";
import {TestBase} from "./TestBase.sol";

/// @notice Deploys and wires the four contracts the way contracts/README.md describes, with
/// validators whose keys the tests hold, plus helpers for EpochRoot signatures and Merkle trees.
abstract contract Fixture is TestBase {
    uint256 internal constant GENESIS = 100_000_000 ether;
    uint256 internal constant RATE = 1 ether;
    uint256 internal constant MIN_STAKE = 1_000 ether;
    uint256 internal constant UNBONDING = 7 days;
    uint256 internal constant WINDOW = 1 hours;
    uint256 internal constant MAX_AGE = 1_000;

    address internal owner = address(0xA0);
    address internal guardian = address(0xA1);
    address internal treasury = address(0xA2);
    address internal validatorPool = address(0xA3);
    address internal lister = address(0xA4);

    ShotToken internal token;
    ValidatorRegistry internal registry;
    RewardDistributor internal distributor;
    DatasetMarket internal market;

    uint256[] internal validatorKeys;
    address[] internal validators;

    function _deploy() internal {
        vm.warp(1_700_000_000);
        vm.roll(100);
        token = new ShotToken(address(this), GENESIS, RATE, owner);
        registry = new ValidatorRegistry(token, MIN_STAKE, UNBONDING, owner);
        distributor = new RewardDistributor(token, registry, owner, guardian, WINDOW, MAX_AGE);
        market = new DatasetMarket(token, distributor, treasury, validatorPool, owner, 7_000, 2_000, 1_000);
        vm.startPrank(owner);
        token.setRewardDistributor(address(distributor));
        registry.setRewardDistributor(address(distributor));
        market.grantRole(market.LISTER_ROLE(), lister);
        vm.stopPrank();
        for (uint256 i = 0; i < 10; ++i) {
            uint256 key = uint256(keccak256(abi.encode("shotbank validator", i))) % (SECP256K1_N - 1) + 1;
            validatorKeys.push(key);
            validators.push(vm.addr(key));
        }
    }

    /// @dev Sends `amount` SHOT from the genesis holder (this contract) to `to`.
    function _give(address to, uint256 amount) internal {
        token.transfer(to, amount);
    }

    function _stake(uint256 index, uint256 amount) internal {
        address validator = validators[index];
        _give(validator, amount);
        vm.startPrank(validator);
        token.approve(address(registry), amount);
        registry.stake(amount);
        vm.stopPrank();
    }

    /// @dev Funds the reward pool with `amount` from this contract.
    function _fund(uint256 amount) internal {
        token.approve(address(distributor), amount);
        distributor.fund(amount);
    }

    function _signRoot(uint256 index, uint64 epoch, bytes32 root, uint256 total) internal view returns (bytes memory) {
        return _sign(validatorKeys[index], registry.epochRootDigest(epoch, root, total));
    }

    /// @dev Signatures of the validators at `indexes`, ordered by ascending signer address.
    function _signatures(uint256[] memory indexes, uint64 epoch, bytes32 root, uint256 total)
        internal
        view
        returns (bytes[] memory signatures)
    {
        uint256 n = indexes.length;
        uint256[] memory sorted = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) sorted[i] = indexes[i];
        for (uint256 i = 1; i < n; ++i) {
            for (uint256 j = i; j > 0 && validators[sorted[j - 1]] > validators[sorted[j]]; --j) {
                (sorted[j - 1], sorted[j]) = (sorted[j], sorted[j - 1]);
            }
        }
        signatures = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) signatures[i] = _signRoot(sorted[i], epoch, root, total);
    }

    function _indexes(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory out) {
        out = new uint256[](3);
        (out[0], out[1], out[2]) = (a, b, c);
    }

    function _indexes(uint256 a) internal pure returns (uint256[] memory out) {
        out = new uint256[](1);
        out[0] = a;
    }

    function _signed(uint256 index, bytes32 root, uint256 total, uint64 epoch)
        internal
        view
        returns (IValidatorRegistry.SignedEpochRoot memory)
    {
        return IValidatorRegistry.SignedEpochRoot(root, total, _signRoot(index, epoch, root, total));
    }

    // --- Merkle trees (sorted-pair, as StandardMerkleTree proofs verify) over a power-of-two leaf count ---

    function _leaf(address account, uint256 amount) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
    }

    function _root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            bytes32[] memory next = new bytes32[](level.length / 2);
            for (uint256 i = 0; i < next.length; ++i) {
                next[i] = Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]);
            }
            level = next;
        }
        return level[0];
    }

    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        uint256 depth = 0;
        for (uint256 n = leaves.length; n > 1; n /= 2) ++depth;
        proof = new bytes32[](depth);
        bytes32[] memory level = leaves;
        for (uint256 d = 0; d < depth; ++d) {
            proof[d] = level[index ^ 1];
            bytes32[] memory next = new bytes32[](level.length / 2);
            for (uint256 i = 0; i < next.length; ++i) {
                next[i] = Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]);
            }
            level = next;
            index /= 2;
        }
    }

    /// @dev A 4-leaf tree paying `amounts[i]` to `accounts[i]`.
    function _tree(address[4] memory accounts, uint256[4] memory amounts)
        internal
        pure
        returns (bytes32 root, bytes32[] memory leaves, uint256 total)
    {
        leaves = new bytes32[](4);
        for (uint256 i = 0; i < 4; ++i) {
            leaves[i] = _leaf(accounts[i], amounts[i]);
            total += amounts[i];
        }
        root = _root(leaves);
    }

    /// @dev Stakes validators 0..2 equally, funds the pool, and submits `root` for `epoch` with all three.
    function _submit(uint64 epoch, bytes32 root, uint256 total) internal {
        uint256 snapshot = block.number - 1;
        distributor.submitRoot(epoch, root, total, snapshot, _signatures(_indexes(0, 1, 2), epoch, root, total));
    }

    function _nextBlock() internal {
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
    }
}
