// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title RewardLeaf
/// @notice Leaf hashing and proof verification for reward trees built with OpenZeppelin's
/// StandardMerkleTree over `(address account, uint256 cumulativeAmount)`.
/// @dev Same results as `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))` and
/// OpenZeppelin's `MerkleProof.verifyCalldata` (sorted-pair hashing), written to hash in scratch space
/// with a tight loop because they sit on the claim path, whose gas budget is fixed. The test suite
/// checks both against OpenZeppelin's implementations with fuzzed inputs.
library RewardLeaf {
    /// @notice The StandardMerkleTree leaf of `(account, amount)`.
    /// @param account The leaf's account.
    /// @param amount The leaf's cumulative amount.
    /// @return leaf `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))`.
    function hash(address account, uint256 amount) internal pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            // abi.encode(address, uint256) is the address left-padded to 32 bytes, then the amount.
            mstore(0x00, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x20, amount)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @notice Whether `proof` proves `leaf` under `root` (sorted-pair Merkle tree).
    /// @param proof Sibling hashes from the leaf up to the root.
    /// @param root The tree's root.
    /// @param leaf The leaf hash.
    /// @return valid True when the rebuilt root equals `root`.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) internal pure returns (bool valid) {
        assembly ("memory-safe") {
            let computed := leaf
            // proof.offset + 32 * proof.length is bounded by the calldata size, so it cannot overflow.
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                // Hash the pair in ascending order, as OpenZeppelin's Hashes.commutativeKeccak256 does.
                switch lt(computed, sibling)
                case 1 {
                    mstore(0x00, computed)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, computed)
                }
                computed := keccak256(0x00, 0x40)
            }
            valid := eq(computed, root)
        }
    }
}
