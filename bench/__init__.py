"""Benchmarks and the harnesses they share with the tests.

Run each benchmark as a module from the repository root, e.g. `python -m bench.latency`;
tests import them the same way (`from bench import calibration`). `sounds` and `drummer`
are the generated hits and the simulated drummer both use.
"""
