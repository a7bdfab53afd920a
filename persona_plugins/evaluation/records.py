"""The results files every evaluation harness keeps: a JSON-lines file with one record per finished
item, appended as each item finishes so that re-running the same command resumes where it stopped
(:func:`run_resumable`), and the JSON summary written at the end (:func:`write_summary`).

Items may run several at a time (``concurrency``, :func:`~persona_plugins.evaluation.runner.
run_bounded`); the file then holds them in the order they finished. Each record is one line
written with one ``write`` and flushed at once, in the event loop's thread, so the file holds only
whole lines whatever moment an interruption lands, and records are keyed by item, so a resumed run
neither redoes nor repeats one, and figures built from the records do not depend on that order.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from persona_plugins.evaluation.progress import Progress
from persona_plugins.evaluation.runner import check_concurrency, run_bounded

__all__ = ["by_name", "load_records", "run_resumable", "write_summary"]

_T = TypeVar("_T")

Record = dict[str, Any]


def _by_id(record: Record) -> str:
    key: str = record["id"]
    return key


def load_records(path: Path, key: Callable[[Record], str] = _by_id) -> dict[str, Record]:
    """Results already written by an earlier (possibly interrupted) run, by ``key`` (the record's
    ``id`` by default). A line cut short by an interruption is left out (that item is simply
    redone) and closed, so that the next record starts on a line of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, Record] = {}
    if not path.exists():
        return done
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        try:
            record = json.loads(line)
            done[key(record)] = record
        except (ValueError, KeyError, TypeError, RecursionError):  # JSON errors are ValueErrors
            continue
    if text and not text.endswith("\n"):
        with path.open("a", encoding="utf-8") as sink:  # close the cut line before appending
            sink.write("\n")
    return done


def _pending(
    items: Sequence[_T], done: dict[str, Record], item_key: Callable[[_T], str]
) -> dict[str, _T]:
    """The items that ``done`` has no record of yet, by key; of items sharing a key, the first."""
    todo: dict[str, _T] = {}
    for item in items:
        key = item_key(item)
        if key not in done:
            todo.setdefault(key, item)
    return todo


async def run_resumable(
    items: Sequence[_T],
    run_one: Callable[[_T], Awaitable[tuple[Record, str]]],
    *,
    path: Path,
    progress: Progress | None,
    name: str,
    unit: str,
    detail: str,
    model_label: str,
    item_key: Callable[[_T], str] = attrgetter("id"),
    record_key: Callable[[Record], str] = _by_id,
    concurrency: int = 1,
) -> dict[str, Record]:
    """Run ``run_one`` on each item that ``path`` has no record of yet, appending each record (and
    showing its progress note) as it finishes; return every record, the earlier ones included, by
    key (``item_key`` of an item is ``record_key`` of its record; by default the item's ``id``
    and the record's ``"id"``). ``progress`` reports on stderr (a new :class:`Progress` when
    None). Up to ``concurrency`` items run at once
    (:func:`~persona_plugins.evaluation.runner.run_bounded`); an item whose key appears twice in
    ``items`` runs once.

    When the run is cancelled (Ctrl-C), every item in flight is cancelled, the file holds only
    complete lines and ``progress`` says how many.
    """
    check_concurrency(concurrency)
    done = load_records(path, record_key)
    todo = _pending(items, done, item_key)
    total = len({item_key(item) for item in items})
    progress = progress if progress is not None else Progress()
    tokens: dict[int, int] = {}  # id(item) -> its progress token while it runs

    def started(item: _T) -> None:
        tokens[id(item)] = progress.begin()

    def finished(item: _T, outcome: tuple[Record, str]) -> None:
        record, note = outcome
        sink.write(json.dumps(record) + "\n")  # a record is one write, then flushed
        sink.flush()
        done[record_key(record)] = record
        progress.advance(note, tokens.pop(id(item), None))

    with progress, path.open("a", encoding="utf-8") as sink:
        progress.start(
            name,
            total,
            done=total - len(todo),
            unit=unit,
            detail=detail,
            model=model_label,
            output=path,
        )
        await run_bounded(
            list(todo.values()),
            run_one,
            concurrency=concurrency,
            on_start=started,
            on_done=finished,
        )
    return done


def by_name(
    records: Sequence[Record], field: str, names: Sequence[str]
) -> Iterator[tuple[str, list[Record]]]:
    """For each of ``names`` that some record has under ``field`` (a system, a strategy), that
    name and its entries, one per record that has it."""
    for name in names:
        rows = [r[field][name] for r in records if name in r[field]]
        if rows:
            yield name, rows


def write_summary(stem: Path, summary: dict[str, Any]) -> None:
    """``<stem>.json`` (the summary less its markdown) and ``<stem>.md`` (the markdown)."""
    data = {k: v for k, v in summary.items() if k != "markdown"}
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    stem.with_suffix(".md").write_text(summary["markdown"] + "\n", encoding="utf-8")
