"""Scoring benchmarks: near-duplicate index scale (``dedup_index``) and scorer throughput."""
