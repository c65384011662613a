"""Benchmarks (`make bench`): measured figures, never timed unit tests."""
