"""A benchmark row's target and whether it is met, computed, never typed."""

from __future__ import annotations


def verdict(value: float, target: float, *, at_most: bool, strict: bool = False) -> str:
    """``"target <= 1.3: met"`` or ``"target > 0: MISSED"`` for ``value``."""
    if at_most:
        met, sign = (value < target, "<") if strict else (value <= target, "<=")
    else:
        met, sign = (value > target, ">") if strict else (value >= target, ">=")
    return f"target {sign} {target:g}: {'met' if met else 'MISSED'}"
