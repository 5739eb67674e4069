"""Small statistics helpers: percentiles and summaries of per-store durations."""

from __future__ import annotations

import math


def percentile(values: list[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict:
    """p50/p95/p99/max/mean of a list of seconds (or milliseconds), rounded for reports."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "count": len(values),
        "p50": _r(percentile(values, 50)),
        "p95": _r(percentile(values, 95)),
        "p99": _r(percentile(values, 99)),
        "max": _r(max(values)),
        "mean": _r(sum(values) / len(values)),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of [start, end) intervals open at one instant."""
    points = []
    for start, end in intervals:
        points.append((start, 1))
        points.append((end, -1))
    points.sort(key=lambda p: (p[0], p[1]))  # an end before a start at the same instant
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
