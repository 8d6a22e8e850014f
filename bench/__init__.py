"""Benchmarks (``make bench``): realistic data sets, the connector against a floor, PASS/FAIL on targets."""
