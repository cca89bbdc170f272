"""Measuring, never asserting: one HTTP load loop, one timing helper, the benchmark, the load
test's request mix, and the per-stage profile of a request."""
