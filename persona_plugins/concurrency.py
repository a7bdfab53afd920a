"""Calls that run side by side, and timeouts, without leaks and without lost cancellations.

A turn starts several model calls at once (the persona and the neutral candidate, the judge's two
orders, parallel reviewers). Two rules hold for every one of them, and this module is where they
are kept:

- **Nothing outlives the turn.** :func:`run_together` awaits calls concurrently; when one of them
  raises (or is cancelled from inside), the others are cancelled and awaited before the error
  propagates, and when the caller is cancelled, so are they all. A turn that ends, however it
  ends, leaves no model call of its own running.
- **A cancellation is never swallowed.** :func:`with_timeout` raises :class:`TimeoutError` after
  its limit, but a ``task.cancel()`` that lands while the call finishes still cancels the caller
  (``asyncio.wait_for`` on Python 3.11 can drop it).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

__all__ = ["run_together", "with_timeout"]

T = TypeVar("T")


async def _timeout_by_waiting(call: Awaitable[T], seconds: float) -> T:
    """The timeout for Python 3.10, which has no ``asyncio.timeout``: the call runs as a task of
    its own, so a cancellation of the caller always propagates (and cancels the call)."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        await _cancel_and_wait([task])
        raise
    if not done:
        await _cancel_and_wait([task])
        raise asyncio.TimeoutError(f"no answer within {seconds} s")
    return task.result()


async def with_timeout(call: Awaitable[T], seconds: float | None) -> T:
    """Await ``call``, raising :class:`TimeoutError` after ``seconds`` (None or 0: no limit).

    A cancellation of the caller is never turned into a timeout nor swallowed (``asyncio.timeout``
    on Python 3.11+, a task of its own on 3.10).
    """
    if not seconds:
        return await call
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await call
    return await _timeout_by_waiting(call, seconds)  # pragma: no cover - Python 3.10


async def _cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel every unfinished task and wait until each has really stopped.

    A cancellation of the caller while it waits (a second Ctrl-C, an outer timeout) does not cut
    the wait short, nor the tasks' own clean-up: the wait goes on, then that cancellation is
    raised, so nothing started here is left running.
    """
    tasks = list(tasks)
    for task in tasks:
        if not task.done():
            task.cancel()
    interrupted: BaseException | None = None
    while unfinished := [task for task in tasks if not task.done()]:
        try:
            await asyncio.wait(unfinished)
        except asyncio.CancelledError as exc:
            interrupted = exc
    for task in tasks:  # mark outcomes as seen: no "exception was never retrieved" warnings
        if not task.cancelled():
            task.exception()
    if interrupted is not None:
        raise interrupted


async def run_together(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await ``calls`` concurrently and return their results in order.

    Structured: when a call raises (or is cancelled from inside), the others are cancelled and
    awaited, then that error propagates; when the caller is cancelled, every call is cancelled and
    awaited before the cancellation propagates. A single call is awaited directly, with no task.
    """
    pending = list(calls)
    if len(pending) == 1:
        return [await pending[0]]
    if not pending:
        return []
    tasks = [asyncio.ensure_future(call) for call in pending]
    waiting: set[asyncio.Future[Any]] = set(tasks)
    try:
        while waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.cancelled() or task.exception() is not None:
                    await _cancel_and_wait(tasks)
                    return [task.result()]  # raises the task's exception (or CancelledError)
    except BaseException:
        await _cancel_and_wait(tasks)  # the caller was cancelled (or a task failed): stop all
        raise
    return [task.result() for task in tasks]
