"""Exponential backoff with full jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [0, min(max_s, base_s * 2**(attempt-1))],
    never below ``base_s / 2`` so that retries never spin."""
    ceiling: float = min(max_s, base_s * (2 ** max(attempt - 1, 0)))  # int ** int is Any to mypy (may be a float)
    draw = (rng or random).uniform(0, ceiling)
    return max(draw, min(base_s / 2, ceiling))
