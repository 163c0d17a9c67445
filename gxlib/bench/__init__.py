"""Benchmarks an operator runs against the local network (``gx bench``): figures, never pass/fail."""
