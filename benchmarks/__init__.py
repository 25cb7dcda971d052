"""Benchmarks: `python -m benchmarks` (make bench) prints each figure beside its baseline."""
