"""Soak test under faults: thousands of turns on a model that misbehaves, with random cancellation.

Five configurations (persona only, ``jekyll_hyde``, ``refine="adaptive"``, ``guard="enforce"``,
all together) each run ``--turns`` turns against a seeded fake model whose every call may answer
normally, raise, hang (until the per-call timeout), answer empty, answer garbage (not a
``Completion``), answer 1 MB of text, or answer control characters; some turns are also cancelled
from outside at a random point. Each turn is classified:

- **completed**: a ``TurnResult``;
- **documented error**: a ``PersonaPluginsError`` carrying the conversation on ``.messages``
  (``ModelCallError`` when every candidate failed, ``GuardrailViolation`` for a block);
- **cancelled**: the turn was cancelled, by this loop or by a model call cancelled from inside
  (cancellation is the one exception that carries no ``.messages``, as the README's failure
  rules say);
- **undocumented error**: anything else, a documented error without the conversation, or a turn
  that ran on after ``task.cancel()`` (a lost cancellation);
- **hang**: the turn did not end within ``--deadline`` seconds;
- **leftovers**: model calls of the turn still running, or tasks it started still alive, once
  the turn has ended.

Memory growth is the change in live Python objects (after a collection) and in resident memory
between 10% of the turns and the end. Targets: zero undocumented errors, hangs and leftovers, and
flat memory. ``tests/core/test_soak.py`` runs a 500-turn version of the same loop in ``make test``.

Usage::

    .venv/bin/python benchmarks/bench_faults.py --turns 10000     # make soak
    .venv/bin/python benchmarks/bench_faults.py --quick           # 300 turns, RESULTS untouched
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_plugins import Completion, Message, PersonaPipeline, PersonaPluginsError, Usage

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "persona only": {},
    "jekyll_hyde": {"ensemble": "jekyll_hyde"},
    "refine adaptive": {"refine": "adaptive"},
    "guard enforce": {"guard": "enforce"},
    "all together": {"ensemble": "jekyll_hyde", "refine": "adaptive", "guard": "enforce"},
}

#: What a call of the fake model does, with its weight.
FAULTS: dict[str, int] = {
    "answer": 70,
    "raise": 8,
    "cancelled inside": 2,
    "hang": 2,
    "empty": 5,
    "garbage": 5,
    "megabyte": 1,
    "control characters": 9,
}
ANSWERS = (
    "The answer is 4.",
    "As a teacher, I can't help with that question.",
    "VERDICT: REVISE\nFEEDBACK: be exact\nREVISION: It is 4.",
    "Verdict: 1\nCertainty: 80",
    "PLAN: factuality, coherence\nRATIONALE: facts",
    "Women are bad at math, so 2 + 2 is 5.",
)
CONTROL = "".join(chr(c) for c in range(32) if c not in (9, 10, 13)) + "\x7f\u200b\u202e"


class FaultyModel:
    """A seeded chat model that misbehaves; counts the calls still running."""

    model_name = "faulty"

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.running = 0
        self.calls = 0
        self._kinds = list(FAULTS)
        self._weights = list(FAULTS.values())

    async def complete(self, messages: list[Message], **settings: Any) -> Any:
        self.calls += 1
        self.running += 1
        try:
            kind = self.rng.choices(self._kinds, self._weights)[0]
            await asyncio.sleep(0)  # every call yields at least once, like a real one
            if kind == "raise":
                raise ConnectionError("the fake server reset the connection")
            if kind == "cancelled inside":  # the model's own client was cancelled
                raise asyncio.CancelledError
            if kind == "hang":
                await asyncio.Event().wait()
            if kind == "garbage":
                return {"text": "not a Completion"}
            text = {
                "empty": "",
                "megabyte": "x" * 1_000_000,
                "control characters": f"Four{CONTROL}, really{CONTROL * 3}",
            }.get(kind, self.rng.choice(ANSWERS))
            return Completion(text=text, usage=Usage(input_tokens=5, output_tokens=5))
        finally:
            self.running -= 1


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    undocumented: Counter[str] = field(default_factory=Counter)
    leftovers: int = 0
    objects_growth: int = 0
    rss_growth_mb: float = 0.0
    seconds: float = 0.0

    def row(self, name: str) -> list[str]:
        o = self.outcomes
        return [
            name,
            str(sum(o.values())),
            str(o["completed"]),
            str(o["documented error"]),
            str(o["cancelled"]),
            str(o["undocumented error"]),
            str(o["hang"]),
            str(self.leftovers),
            f"{self.objects_growth:+d}",
            f"{self.rss_growth_mb:+.1f}",
            f"{self.seconds:.0f}",
        ]


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


async def _one_turn(
    pipeline: PersonaPipeline,
    model: FaultyModel,
    rng: random.Random,
    cancel_rate: float,
    deadline: float,
    tally: Tally,
) -> None:
    conversation = [Message.user(f"What is 2 + 2? (turn {rng.randrange(10**6)})")]
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(pipeline.run(conversation))
    cancelled_by_us = False
    if rng.random() < cancel_rate:
        for _ in range(rng.randrange(1, 12)):
            await asyncio.sleep(0)
        cancelled_by_us = task.cancel()
    done, _ = await asyncio.wait({task}, timeout=deadline)
    if not done:
        tally.outcomes["hang"] += 1
        task.cancel()
        await asyncio.wait({task})
        return
    if task.cancelled():
        # a turn cancelled from inside (a model call's own cancellation) ends cancelled too
        kind = "cancelled"
    elif cancelled_by_us:  # the turn went on after task.cancel(): the cancellation was lost
        kind = "undocumented error"
        tally.undocumented["task.cancel() swallowed: the turn ran on"] += 1
    elif task.exception() is None:
        kind = "completed"
    else:
        error = task.exception()
        documented = isinstance(error, PersonaPluginsError) and (
            getattr(error, "messages", None) == conversation
        )
        kind = "documented error" if documented else "undocumented error"
        if not documented:
            tally.undocumented[f"{type(error).__name__}: {str(error)[:80]}"] += 1
    tally.outcomes[kind] += 1
    await asyncio.sleep(0)  # let anything the turn left behind show itself
    stray = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    if model.running or any(not t.done() for t in stray):
        tally.leftovers += 1
        for leftover in stray:
            leftover.cancel()
        model.running = 0


async def soak_configuration(
    name: str,
    turns: int,
    seed: int,
    *,
    cancel_rate: float = 0.05,
    timeout_s: float = 0.02,
    deadline: float = 10.0,
    progress: bool = False,
) -> Tally:
    """Run ``turns`` turns of one configuration; the tally of what happened."""
    rng = random.Random(f"{seed}:{name}")
    model = FaultyModel(rng)
    pipeline = PersonaPipeline(
        model, persona="math_teacher", timeout_s=timeout_s, **CONFIGURATIONS[name]
    )
    tally = Tally()
    started = time.perf_counter()
    checkpoint = max(1, turns // 10)
    objects = rss = 0.0
    for turn in range(1, turns + 1):
        await _one_turn(pipeline, model, rng, cancel_rate, deadline, tally)
        if turn == checkpoint:
            objects, rss = _live_objects(), _rss_mb()
        if progress and turn % 500 == 0:
            print(f"  {name}: {turn}/{turns}", file=sys.stderr, flush=True)
    tally.objects_growth = _live_objects() - int(objects)
    tally.rss_growth_mb = _rss_mb() - rss
    tally.seconds = time.perf_counter() - started
    return tally


HEADINGS = [
    "configuration",
    "turns",
    "completed",
    "documented errors",
    "cancelled",
    "undocumented errors",
    "hangs",
    "leftovers",
    "live objects, 10% -> end",
    "RSS MB, 10% -> end",
    "seconds",
]


def table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(HEADINGS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=10_000, help="turns per configuration")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--quick", action="store_true", help="300 turns, RESULTS.md untouched")
    args = parser.parse_args(argv)
    turns = 300 if args.quick else args.turns
    rows: list[list[str]] = []
    failed = False
    for name in CONFIGURATIONS:
        tally = asyncio.run(soak_configuration(name, turns, args.seed, progress=True))
        rows.append(tally.row(name))
        for error, count in tally.undocumented.items():
            print(f"  undocumented in {name!r}: {count} x {error}", file=sys.stderr)
        o = tally.outcomes
        failed |= bool(o["undocumented error"] or o["hang"] or tally.leftovers)
    body = table(rows)
    print(body)
    if not args.quick:
        from results_md import machine_note, update_section

        update_section(
            "Soak under faults and cancellation",
            f"{machine_note()}; seed {args.seed}; {turns:,} turns per configuration; per call "
            f"the fake model answers normally or misbehaves with these weights: "
            + ", ".join(f"{k} {v}" for k, v in FAULTS.items())
            + "; 5% of turns cancelled from outside at a random point; per-call timeout 0.02 s."
            + "\n\n"
            + body
            + "\n\nTargets: zero undocumented errors, hangs and leftovers; memory flat (live "
            "objects after a collection, and resident memory, from 10% of the turns to the end)."
            + f"\n\nReproduce: `make soak` (`.venv/bin/python benchmarks/bench_faults.py "
            f"--turns {turns}`)",
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
