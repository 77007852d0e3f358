"""nnspec benchmarks."""
