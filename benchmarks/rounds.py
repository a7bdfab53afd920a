"""Interleaved rounds, shared by the overhead benchmarks.

Variants measured side by side are run in rounds: each round runs every variant's batch once, in
an order rotated from round to round (so that machine drift hits every variant alike), with
garbage collection paused inside a round, as ``timeit`` does.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def in_rounds(
    variants: Sequence[T], rounds: int, batch: Callable[[T], Awaitable[None]]
) -> None:
    """``await batch(variant)`` for every variant, ``rounds`` times, the order rotated."""
    for index in range(rounds):
        shift = index % len(variants)
        gc.collect()
        gc.disable()
        try:
            for variant in [*variants[shift:], *variants[:shift]]:
                await batch(variant)
        finally:
            gc.enable()
