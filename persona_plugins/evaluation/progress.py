"""Progress reporting and prompt interruption for the long evaluation commands.

:class:`Progress` writes to stderr: a start line at once (what runs, how many items, how many are
already saved, the model and the results file), then a line per finished item, redrawn in place on
a terminal. A ticker thread keeps it alive while an item runs: on a terminal the line is redrawn
every second with the running item's time (with several items in flight: how many, and the longest
running one's time); elsewhere (a log, CI) a line is written at least every
``interval`` seconds (10 by default) and at most one per finished item in between, so logs stay
short. Throughput (items per minute, whatever number are in flight) and the estimate of the time
left count only the items this run has finished: items saved by an earlier run are reported as
done but are not timed.

:func:`run_interruptible` runs a harness coroutine like :func:`asyncio.run`, except that blocking
model calls (``asyncio.to_thread``, as the embedded llama.cpp model does) run in daemon threads that
nobody waits for: on Ctrl-C the harness is cancelled at once and the command can report and exit
while an uninterruptible call finishes (or is dropped) in the background.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, ParamSpec, TypeVar

__all__ = [
    "DaemonThreadExecutor",
    "Progress",
    "format_duration",
    "run_interruptible",
    "running_calls",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Seconds between progress lines when stderr is not a terminal.
LOG_INTERVAL = 10.0
#: Seconds between redraws of the line on a terminal.
TTY_INTERVAL = 1.0


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 10m``.

    >>> format_duration(3.2), format_duration(185), format_duration(7800)
    ('3s', '3m 05s', '2h 10m')
    """
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class Progress:
    """Progress of one harness run, written to ``stream`` (stderr by default).

    The harness calls :meth:`start` once it knows what it will do, :meth:`begin` as an item starts
    (optional; with several items in flight it lets the ticker name the longest running one),
    :meth:`advance` after saving each item, and :meth:`close` at the end (also on an error or an
    interruption); used as a context manager, :meth:`close` is called on exit. After an
    interruption :meth:`interrupted_note` says how much was saved and how to resume.

    :param interval: seconds between lines: the ticker writes when nothing was written for that
        long, and outside a terminal :meth:`advance` writes at most one line per interval (the
        first and last items always show); default 1 s on a terminal, 10 s otherwise.
    :param clock: a monotonic clock in seconds (tests pass a fake one).
    :param tty: redraw in place; default: whether ``stream`` is a terminal.
    :param ticker: run the ticker thread (off: lines come from :meth:`advance` and :meth:`tick`
        only).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
        ticker: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self.tty = tty
        self.interval = (TTY_INTERVAL if tty else LOG_INTERVAL) if interval is None else interval
        self.clock = clock
        self.ticker = ticker
        self.label = ""
        self.unit = "items"
        self.total = 0
        self.resumed = 0
        self.completed = 0
        self.output: str | None = None
        self.started = False
        self._run_started = 0.0
        self._item_started = 0.0
        self._last_write = 0.0
        self._drawn = 0  # length of the line drawn in place on a terminal (0: none pending)
        self._in_flight: dict[int, float] = {}  # begin() token -> when that item started
        self._tokens = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- what the harness calls ------------------------------------------------------------------

    def start(
        self,
        label: str,
        total: int,
        *,
        done: int = 0,
        unit: str = "items",
        detail: str = "",
        model: str = "",
        output: str | os.PathLike[str] | None = None,
    ) -> None:
        """Write the start line now and start the ticker.

        :param label: what runs, e.g. ``jekyll-hyde strategyqa``; it prefixes every line.
        :param total: items in this run, the ``done`` ones included.
        :param done: items an earlier run already saved (resumed: counted as done, never timed).
        :param unit: what an item is, for the start line (``questions``, ``answers`` ...).
        :param detail: added after the count, e.g. ``(4 personas x 20 questions)``.
        """
        with self._lock:
            self.label = label
            self.unit = unit
            self.total = max(0, total)
            self.resumed = min(max(0, done), self.total)
            self.completed = 0
            self._in_flight.clear()
            self.output = os.fspath(output) if output is not None else None
            self.started = True
            now = self.clock()
            self._run_started = self._item_started = now
            todo = self.total - self.resumed
            parts = [f"{self.total} {unit}" + (f" {detail}" if detail else "")]
            if self.resumed and todo:
                parts.append(f"{self.resumed} already saved, {todo} to run")
            elif self.resumed:
                parts.append(f"all {self.resumed} already saved, nothing to run")
            if model:
                parts.append(f"model: {model}")
            if self.output:
                parts.append(f"results: {self.output}")
            self._write_line(f"{label}: " + "; ".join(parts))
            if todo and self.ticker and self.interval > 0:
                self._stop.clear()
                self._ticker = threading.Thread(
                    target=self._tick_loop, name="persona-plugins-progress", daemon=True
                )
                self._ticker.start()

    def begin(self) -> int:
        """An item starts now; returns the token to give :meth:`advance` when it is saved."""
        with self._lock:
            self._tokens += 1
            self._in_flight[self._tokens] = self.clock()
            return self._tokens

    def advance(self, status: str = "", token: int | None = None) -> None:
        """One more item of this run is finished and saved; ``status`` describes its outcome and
        ``token`` (from :meth:`begin`) says which item it was."""
        with self._lock:
            if token is not None:
                self._in_flight.pop(token, None)
            self.completed += 1
            now = self.clock()
            self._item_started = now
            line = self._line(now, status)
            finished = self.resumed + self.completed >= self.total
            if self.tty:
                self._draw(line)
                if finished:
                    self._end_drawn_line()
            elif self.completed == 1 or finished or now - self._last_write >= self.interval:
                self._write_line(line)

    def tick(self) -> None:
        """Write the "still running" line now (the ticker thread calls this)."""
        with self._lock:
            if not self.started or self.resumed + self.completed >= self.total:
                return
            now = self.clock()
            if len(self._in_flight) > 1:
                longest = format_duration(now - min(self._in_flight.values()))
                status = f"{len(self._in_flight)} running, the longest for {longest}"
            else:
                began = next(iter(self._in_flight.values()), self._item_started)
                running = format_duration(now - max(began, self._item_started))
                status = f"item {self.resumed + self.completed + 1} running for {running}"
            line = self._line(now, status)
            if self.tty:
                self._draw(line)
            else:
                self._write_line(line)

    def close(self) -> None:
        """Stop the ticker and end a line left drawn in place. Safe to call more than once."""
        self._stop.set()
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=2.0)
        with self._lock:
            self._end_drawn_line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what the command reports ----------------------------------------------------------------

    @property
    def saved(self) -> int:
        """Items saved in the results file: those of earlier runs plus those finished now."""
        return self.resumed + self.completed

    def interrupted_note(self) -> str:
        """``12 of 100 results saved in <file>; run the same command again to resume``."""
        if not self.started:
            return ""
        where = f" in {self.output}" if self.output else ""
        note = f"{self.saved} of {self.total} results saved{where}"
        if self.saved < self.total:
            note += "; run the same command again to resume"
        return note

    # -- internals -------------------------------------------------------------------------------

    def _line(self, now: float, status: str) -> str:
        width = len(str(self.total))
        done = self.saved
        percent = 100 * done / self.total if self.total else 100.0
        parts = [f"{self.label} [{done:>{width}}/{self.total}] {percent:3.0f}%"]
        elapsed = now - self._run_started
        if self.completed and elapsed > 0:
            per_second = self.completed / elapsed  # whatever number of items were in flight
            left = (self.total - done) / per_second
            parts.append(f"{60 * per_second:.1f} {self.unit}/min | eta {format_duration(left)}")
        if status:
            parts.append(status)
        return " | ".join(parts)

    def _tick_loop(self) -> None:
        while True:
            with self._lock:
                due = self._last_write + self.interval - self.clock()
            if due <= 0:
                self.tick()
                due = self.interval
            if self._stop.wait(max(due, 0.01)):
                return

    def _write_line(self, line: str) -> None:
        self._end_drawn_line()
        self._emit(line + "\n")

    def _columns(self) -> int:
        try:  # the width of the terminal the line is drawn on, even when stdout is redirected
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return shutil.get_terminal_size((80, 24)).columns

    def _draw(self, line: str) -> None:
        line = line[: max(20, self._columns() - 1)]  # a wrapped line could not be redrawn
        pad = max(0, self._drawn - len(line))
        self._emit("\r" + line + " " * pad)
        self._drawn = len(line)

    def _end_drawn_line(self) -> None:
        if self._drawn:
            self._drawn = 0
            self._emit("\n")

    def _emit(self, text: str) -> None:
        self._last_write = self.clock()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr never stops the run
            pass


# -- running a harness so that Ctrl-C does not wait for a blocking model call ---------------------

_running = 0
_running_lock = threading.Lock()


def running_calls() -> int:
    """Calls submitted to any :class:`DaemonThreadExecutor` that have not returned yet.

    After an interruption these are model calls left running in native code (llama.cpp): the
    command line then ends the process with ``os._exit``, because shutting the interpreter down
    under such a call can crash it.
    """
    with _running_lock:
        return _running


class DaemonThreadExecutor(ThreadPoolExecutor):
    """Runs each submitted call in its own daemon thread, and never waits for one on shutdown.

    Installed as the event loop's default executor by :func:`run_interruptible`, so the threads
    behind ``asyncio.to_thread`` neither hold up ``asyncio.run``'s clean-up nor the interpreter's
    exit (a llama.cpp call cannot be stopped from Python once it has started). It is a
    ``ThreadPoolExecutor`` only because the event loop accepts nothing else; the pool's own
    (non-daemon, joined at exit) worker threads are never started.
    """

    def __init__(self, name: str = "persona-plugins-call") -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self._name = name
        self._lock = threading.Lock()
        self._count = 0
        self._closed = False

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._count += 1
            name = f"{self._name}-{self._count}"
        future: Future[_T] = Future()

        def work() -> None:
            global _running
            if not future.set_running_or_notify_cancel():
                return
            with _running_lock:
                _running += 1
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the awaiting side, as an executor does
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                with _running_lock:
                    _running -= 1

        threading.Thread(target=work, name=name, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; calls still running are left to finish on their own."""
        with self._lock:
            self._closed = True


def run_interruptible(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` with :func:`asyncio.run`, a :class:`DaemonThreadExecutor` being the loop's
    default executor.

    On Ctrl-C, ``asyncio.run`` cancels the coroutine (at the ``await`` it is waiting on, from
    Python 3.11; Python 3.10 raises in the loop and then cancels it), so the harness closes its
    files, and raises :class:`KeyboardInterrupt` here. Its clean-up waits for the default
    executor's calls, which this executor does not do, so a model call still running in a worker
    thread does not hold up the command.
    """

    async def main() -> _T:
        asyncio.get_running_loop().set_default_executor(DaemonThreadExecutor())
        return await coro

    return asyncio.run(main())
