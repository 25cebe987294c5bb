"""Helpers shared by the TikTok tests and their worker processes."""

from __future__ import annotations

from collections.abc import Iterable


def max_calls_in_one_second(times: Iterable[float]) -> int:
    """The most calls any window ``(t - 1, t]`` holds, counted as the sandbox does."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
