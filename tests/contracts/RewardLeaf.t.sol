// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {RewardLeaf} from "../../contracts/libraries/RewardLeaf.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @dev Exposes the library with a calldata proof, as the distributor uses it.
contract RewardLeafHarness {
    function hash(address account, uint256 amount) external pure returns (bytes32) {
        return RewardLeaf.hash(account, amount);
    }

    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return RewardLeaf.verify(proof, root, leaf);
    }

    function verifyOz(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    function processOz(bytes32[] calldata proof, bytes32 leaf) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leaf);
    }
}

/// Differential tests: RewardLeaf must agree with the StandardMerkleTree leaf encoding and with
/// OpenZeppelin's MerkleProof on every input.
contract RewardLeafTest is TestBase {
    RewardLeafHarness internal harness;

    function setUp() public {
        harness = new RewardLeafHarness();
    }

    function test_hash_matchesStandardMerkleTreeLeaf() public view {
        // leafHash of ["0x1111111111111111111111111111111111111111", "5000000000000000000"] as computed by
        // @openzeppelin/merkle-tree 1.0.8 StandardMerkleTree with encoding ["address", "uint256"].
        vm.assertEq(
            harness.hash(0x1111111111111111111111111111111111111111, 5 ether),
            0xeb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283,
            "leaf"
        );
    }

    function test_fuzz_hashMatchesAbiEncoding(address account, uint256 amount) public view {
        vm.assertEq(
            harness.hash(account, amount),
            keccak256(bytes.concat(keccak256(abi.encode(account, amount)))),
            "leaf encoding"
        );
    }

    function test_fuzz_verifyMatchesOpenZeppelin(bytes32 leaf, bytes32[] calldata proof, bool useRealRoot, bytes32 other)
        public
        view
    {
        bytes32 root = useRealRoot ? harness.processOz(proof, leaf) : other;
        vm.assertEq(harness.verify(proof, root, leaf), harness.verifyOz(proof, root, leaf), "same verdict");
        if (useRealRoot) vm.assertTrue(harness.verify(proof, root, leaf), "valid proof accepted");
    }

    function test_verify_emptyProofMeansLeafIsRoot() public view {
        bytes32[] memory empty = new bytes32[](0);
        vm.assertTrue(harness.verify(empty, keccak256("x"), keccak256("x")), "single leaf");
        vm.assertFalse(harness.verify(empty, keccak256("x"), keccak256("y")), "other leaf");
    }
}
