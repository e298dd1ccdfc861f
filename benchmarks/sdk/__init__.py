"""SDK benchmarks: a dataset version downloaded and streamed from the running backend."""
