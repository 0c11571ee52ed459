"""Benchmarks (`emostream bench ...`): JSON out, a baseline measured in the same run."""
