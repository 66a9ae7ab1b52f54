"""Benchmarks of savestate against the Python protobuf libraries (not part of the test run).

Run ``python -m benchmarks.run`` (``--fast`` for tiny workloads and one round).
"""
