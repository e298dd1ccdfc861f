"""Rewards benchmarks: epoch close (allocation, rewards tree, proofs) at scale."""
