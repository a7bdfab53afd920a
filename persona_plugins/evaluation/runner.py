"""The one bounded runner every evaluation harness uses: up to ``concurrency`` items in flight.

The harnesses ask many independent questions; a served model (or a fleet of them) answers many at
once, so a harness keeps ``concurrency`` questions in flight instead of one. :func:`run_bounded`
does that with a fixed number of worker coroutines pulling from one queue of items, so at most
``concurrency`` items run at any moment, whatever their number. It follows the project's rules for
calls that run side by side (:mod:`persona_plugins.concurrency`): the workers run under
:func:`~persona_plugins.concurrency.run_together`, so when one item fails the others are cancelled
and awaited before the error propagates, and when the run is cancelled (Ctrl-C) every item in
flight is cancelled and awaited: nothing outlives the run.

``on_done`` is called in the event loop's thread, with no ``await`` between an item's end and the
call, so whatever it writes (a results line) is written whole, one item at a time, in the order
the items finish. The order of completion is the only thing concurrency changes: callers that
build their figures from records keyed by item (as the harnesses do) get the figures of a
sequential run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from persona_plugins.concurrency import run_together

__all__ = ["check_concurrency", "run_bounded"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def check_concurrency(concurrency: object, name: str = "concurrency") -> int:
    """``concurrency`` if it is a whole number of at least 1; otherwise a :class:`ValueError`
    saying what was given (as ``name``)."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {concurrency!r}")
    return concurrency


async def run_bounded(
    items: Iterable[_T],
    work: Callable[[_T], Awaitable[_R]],
    *,
    concurrency: int = 1,
    on_start: Callable[[_T], None] | None = None,
    on_done: Callable[[_T, _R], None] | None = None,
) -> int:
    """Run ``work`` on every item, at most ``concurrency`` at a time; return how many finished.

    Items start in the order given; ``on_start(item)`` is called as each starts and
    ``on_done(item, result)`` as each finishes (in the order they finish), both in the event
    loop's thread. With ``concurrency=1`` the items run one after another, exactly as a plain loop
    would.

    Structured: when ``work`` (or ``on_done``) raises for one item, no new item starts, the items
    in flight are cancelled and awaited, and that error propagates; when the caller is cancelled,
    every item in flight is cancelled and awaited before the cancellation propagates.

    Example:
        >>> import asyncio
        >>> async def double(n: int) -> int:
        ...     await asyncio.sleep(0.001 * (5 - n))
        ...     return 2 * n
        >>> seen: list[tuple[int, int]] = []
        >>> def note(item: int, result: int) -> None:
        ...     seen.append((item, result))
        >>> asyncio.run(run_bounded(range(5), double, concurrency=3, on_done=note))
        5
        >>> sorted(seen)
        [(0, 0), (1, 2), (2, 4), (3, 6), (4, 8)]
    """
    check_concurrency(concurrency)
    queue = iter(items)
    finished = 0

    async def worker() -> None:
        nonlocal finished
        for item in queue:  # a shared iterator: each item goes to exactly one worker
            if on_start is not None:
                on_start(item)
            result = await work(item)
            finished += 1
            if on_done is not None:
                on_done(item, result)

    await run_together([worker() for _ in range(concurrency)])
    return finished
