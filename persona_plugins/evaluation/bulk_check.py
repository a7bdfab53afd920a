"""Bulk scanning of logged responses with the guardrail detectors (``persona-plugins check
--jsonl FILE``).

The input is JSON lines, one object per response: ``response`` (the text, required), and
optionally ``question`` (the user's message it answers), ``persona`` (a catalog name) and ``id``.
Lines are read in chunks and checked by ``workers`` processes (one, in this process, when
``workers`` is 1); each process builds its guard pipelines once (one per persona, through the
public :func:`~persona_plugins.guardrails.guard_pipeline` and :meth:`PersonaPipeline.check`) and
checks chunk after chunk. Results come back in input order. A line that cannot be checked (not
JSON, not an object, no ``response`` text, an unknown persona) is a :class:`BadLine` naming its
line number, and the scan goes on.

:class:`ScanSummary` counts the findings by detector and severity and the share of responses with
a finding per persona.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from persona_plugins.evaluation.runner import check_concurrency

__all__ = [
    "BadLine",
    "CheckedLine",
    "ScanSummary",
    "default_workers",
    "scan_lines",
]

#: Lines per chunk sent to a worker process: large enough that sending them costs little next
#: to checking them, small enough that the workers stay evenly busy.
CHUNK_LINES = 500


@dataclass(frozen=True)
class CheckedLine:
    """One response checked: its line number, ``id`` and persona as given, and its findings
    (each a JSON-ready dict of :class:`~persona_plugins.Finding`)."""

    line: int
    id: Any
    persona: str | None
    findings: list[dict[str, Any]]


@dataclass(frozen=True)
class BadLine:
    """A line that could not be checked, and why."""

    line: int
    problem: str


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words: ``a number``, ``an array`` ..."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


# -- one process's checker ----------------------------------------------------------------------


class _Checker:
    """The guard pipelines of one process, one per persona, built on first use."""

    def __init__(self, detectors: Sequence[str]):
        from persona_plugins.pipeline import collect_personas
        from persona_plugins.plugins import get_plugin_manager

        self.detectors = list(detectors)
        self.plugin_manager = get_plugin_manager()
        self.personas = collect_personas(self.plugin_manager)
        self.pipelines: dict[str | None, Any] = {}
        self.loop = asyncio.new_event_loop()

    def _pipeline(self, persona: str | None) -> Any:
        from persona_plugins.guardrails import guard_pipeline

        if persona not in self.pipelines:
            self.pipelines[persona] = guard_pipeline(
                persona=self.personas[persona] if persona is not None else None,
                config={"detectors": self.detectors},
                plugin_manager=self.plugin_manager,
            )
        return self.pipelines[persona]

    def read(self, number: int, raw: bytes) -> tuple[str, str | None, str | None, Any] | BadLine:
        """``(response, question, persona, id)`` of a line, or what is wrong with it."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return BadLine(number, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            return BadLine(number, f"not JSON ({exc.msg} at column {exc.colno})")
        except RecursionError:
            return BadLine(number, "not JSON (nested too deeply)")
        except ValueError as exc:  # e.g. an integer with more digits than Python converts
            return BadLine(number, f"not usable JSON ({exc})")
        if not isinstance(row, dict):
            return BadLine(number, f"{_kind(row)}, not an object")
        if "response" not in row:
            return BadLine(number, "no 'response'")
        response = row["response"]
        if not isinstance(response, str):
            return BadLine(number, f"'response' must be text, got {_kind(response)}")
        question, persona, key = row.get("question"), row.get("persona"), row.get("id")
        if question is not None and not isinstance(question, str):
            return BadLine(number, f"'question' must be text, got {_kind(question)}")
        # JSON may carry lone surrogates (a cut emoji): checked and written as U+FFFD
        response = _whole_characters(response)
        question = _whole_characters(question) if question is not None else None
        key = _whole_characters(key) if isinstance(key, str) else key
        if persona is not None and not isinstance(persona, str):
            return BadLine(number, f"'persona' must be a name, got {_kind(persona)}")
        if persona is not None and persona not in self.personas:
            return BadLine(number, f"unknown persona {persona!r}")
        if key is not None and (isinstance(key, bool) or not isinstance(key, (str, int))):
            return BadLine(number, f"'id' must be text or a number, got {_kind(key)}")
        return response, question, persona, key

    def check(self, lines: Sequence[tuple[int, bytes]]) -> list[CheckedLine | BadLine]:
        results: list[CheckedLine | BadLine] = []
        for number, raw in lines:
            read = self.read(number, raw)
            if isinstance(read, BadLine):
                results.append(read)
                continue
            response, question, persona, key = read
            messages = [{"role": "user", "content": question}] if question else None
            findings = self.loop.run_until_complete(
                self._pipeline(persona).check(response, messages)
            )
            results.append(
                CheckedLine(number, key, persona, [f.model_dump(mode="json") for f in findings])
            )
        return results


_WORKER: _Checker | None = None


def _start_worker(detectors: Sequence[str]) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group: the parent stops the scan, the workers only finish
    # the chunk in hand (no traceback from each of them).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = _Checker(detectors)


def _check_chunk(lines: Sequence[tuple[int, bytes]]) -> list[CheckedLine | BadLine]:
    assert _WORKER is not None, "the worker was not started"
    return _WORKER.check(lines)


# -- the scan ------------------------------------------------------------------------------------


def _chunks(source: IO[bytes], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for number, raw in enumerate(source, start=1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue  # blank lines are no responses
        chunk.append((number, raw))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def scan_lines(
    source: IO[bytes],
    detectors: Sequence[str],
    *,
    workers: int = 1,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[CheckedLine | BadLine]:
    """Check every response of the JSON-lines ``source`` (a binary file), in input order.

    ``workers`` processes check chunks of ``chunk_lines`` lines side by side (1: this process
    does); at most two chunks per worker are waiting at any time, so memory stays flat whatever
    the size of the file. Blank lines are skipped.
    """
    check_concurrency(workers, "workers")
    if workers == 1:
        checker = _Checker(detectors)
        try:
            for chunk in _chunks(source, chunk_lines):
                yield from checker.check(chunk)
        finally:
            checker.loop.close()
        return
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_start_worker, initargs=(list(detectors),)
    ) as pool:
        waiting: deque[Future[list[CheckedLine | BadLine]]] = deque()
        try:
            for chunk in _chunks(source, chunk_lines):
                waiting.append(pool.submit(_check_chunk, chunk))
                if len(waiting) >= 2 * workers:
                    yield from waiting.popleft().result()
            while waiting:
                yield from waiting.popleft().result()
        finally:
            for future in waiting:
                future.cancel()


@dataclass
class ScanSummary:
    """Counts over a scan: responses, bad lines, findings by detector and severity, and per
    persona the share of responses with at least one finding."""

    responses: int = 0
    bad_lines: int = 0
    findings: int = 0
    with_findings: int = 0
    by_detector: dict[str, dict[str, int]] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    personas: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, result: CheckedLine | BadLine) -> None:
        if isinstance(result, BadLine):
            self.bad_lines += 1
            return
        self.responses += 1
        self.findings += len(result.findings)
        persona = self.personas.setdefault(
            result.persona or "(none)", {"responses": 0, "with_findings": 0}
        )
        persona["responses"] += 1
        if result.findings:
            self.with_findings += 1
            persona["with_findings"] += 1
        for finding in result.findings:
            severity = str(finding.get("severity"))
            counts = self.by_detector.setdefault(str(finding.get("detector")), {})
            counts[severity] = counts.get(severity, 0) + 1
            self.by_severity[severity] = self.by_severity.get(severity, 0) + 1

    def add_all(self, results: Iterable[CheckedLine | BadLine]) -> None:
        for result in results:
            self.add(result)

    def as_dict(self) -> dict[str, Any]:
        return {
            "responses": self.responses,
            "bad_lines": self.bad_lines,
            "findings": self.findings,
            "responses_with_findings": self.with_findings,
            "by_detector": {
                k: dict(sorted(v.items())) for k, v in sorted(self.by_detector.items())
            },
            "by_severity": dict(sorted(self.by_severity.items())),
            "personas": {
                name: {**counts, "rate": counts["with_findings"] / counts["responses"]}
                for name, counts in sorted(self.personas.items())
            },
        }


def _whole_characters(text: str) -> str:
    """``text`` with any lone surrogate (half of a cut character) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
