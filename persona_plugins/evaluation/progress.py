"""A dependency-free progress line for long runs, written to stderr."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    """``[ 12/100] 12% | 3.4 s/item | eta 5m | <status>``; redrawn in place on a terminal, one
    line every ``every`` items otherwise (so logs stay readable)."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, every: int = 10):
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.every = every
        self.done = 0
        self.started = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, status: str = "", step: int = 1) -> None:
        self.done += step
        elapsed = time.perf_counter() - self.started
        rate = elapsed / self.done if self.done else 0.0
        eta = rate * (self.total - self.done)
        line = (
            f"{self.label} [{self.done:>{len(str(self.total))}}/{self.total}] "
            f"{100 * self.done / self.total:3.0f}% | {rate:.1f} s/item | eta {eta / 60:.0f}m"
            + (f" | {status}" if status else "")
        )
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160))
            if self.done >= self.total:
                self.stream.write("\n")
        elif self.done % self.every == 0 or self.done >= self.total:
            self.stream.write(line + "\n")
        self.stream.flush()
