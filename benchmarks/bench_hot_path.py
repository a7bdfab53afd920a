"""Where the time of a persona-injection-only turn goes, step by step.

Three measurements, all with tracing and metrics off (no OpenTelemetry SDK provider), a static
persona and no ensemble, refinement or guardrails (the configuration the overhead benchmarks use):

1. **The core turn, per step.** ``PersonaPipeline.run`` on an instant :class:`ChatModel`, timed
   whole, and timed again with a stopwatch around each step the pipeline takes (the real
   ``run``: its stage functions are wrapped where ``persona_plugins.pipeline`` calls them). The
   two are interleaved in rounds. What the stopwatches add is reported, so the steps can be read
   against the unwrapped total. ``prepare()`` (what the Semantic Kernel wrapper runs for a
   persona-only call) is timed the same way.
2. **Calls per run.** Python function calls per wrapped agent call against the raw one (cProfile
   counts them exactly): a fair proxy for the work added, whatever the machine.
3. **What the wrappers add, by module** (cProfile own time of the wrapped call minus the raw
   call's, per module): ``AssistantAgent.run`` around ``PersonaChatCompletionClient`` and
   ``ChatCompletionAgent.get_response`` around ``PersonaChatCompletion``, on the instant clients of
   ``bench_autogen_overhead.py`` and ``bench_sk_overhead.py``. Profiling slows small functions
   more than large ones, so read the shares, not the absolute numbers.

Run::

    .venv/bin/python benchmarks/bench_hot_path.py            # writes RESULTS.md
    .venv/bin/python benchmarks/bench_hot_path.py --quick    # a few seconds, prints only
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from results_md import machine_note, update_section
from rounds import in_rounds

HEADING = "Where a persona-only turn's time goes"
PERSONA = "math_teacher"
QUESTION = "What is 7 * 12?"

#: The steps of a turn, as ``persona_plugins.pipeline`` calls them: (name there, label).
STEPS: tuple[tuple[str, str], ...] = (
    ("normalize_messages", "check the messages (already `Message` objects)"),
    ("choose_persona", "select_persona stage (static persona: made once per pipeline)"),
    ("write_persona", "inject_persona stage (system prompt rendered once per pipeline)"),
    ("produce_candidates", "generate_candidates stage (the one model call, the candidate)"),
    ("choose_candidate", "judge stage (one candidate: nothing to do)"),
    ("refine_draft", "refine stage (off: nothing to do)"),
    ("guard_response", "guard stage (off: nothing to do)"),
    ("TurnResult", "the `TurnResult`"),
    ("observe_turn", "observe stage (no observer, nothing recording: nothing to do)"),
)


def instant_model() -> Any:
    from persona_plugins import Completion, Usage

    class InstantModel:
        """A ChatModel that answers at once with the same completion."""

        model_name = "instant"

        def __init__(self) -> None:
            self.completion = Completion(
                text="Seven times twelve is 84.", usage=Usage(input_tokens=20, output_tokens=8)
            )

        async def complete(self, messages: Sequence[Any], **settings: Any) -> Any:
            return self.completion

    return InstantModel()


@dataclass
class Stopwatches:
    """Time spent in each wrapped step, per run."""

    spent: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))
    runs: list[dict[str, float]] = field(default_factory=list)

    def wrap_sync(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - started

        return timed

    def wrap_async(
        self, name: str, function: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - started

        return timed

    def lap(self, total: float) -> None:
        self.runs.append({**self.spent, "total": total})
        self.spent.clear()


def instrumented(stopwatches: Stopwatches) -> Callable[[], None]:
    """Wrap each step where ``persona_plugins.pipeline`` calls it; returns the undo."""
    import persona_plugins.pipeline as pipeline_module

    saved = {name: getattr(pipeline_module, name) for name, _ in STEPS}
    for name, original in saved.items():
        wrap = stopwatches.wrap_async if asyncio.iscoroutinefunction(original) else None
        setattr(
            pipeline_module,
            name,
            wrap(name, original) if wrap else stopwatches.wrap_sync(name, original),
        )

    def undo() -> None:
        for name, original in saved.items():
            setattr(pipeline_module, name, original)

    return undo


async def core_rounds(rounds: int, runs: int, warmup: int) -> dict[str, Any]:
    """``run`` whole, ``run`` with stopwatches, ``prepare`` whole, ``prepare`` with stopwatches,
    interleaved in rounds (garbage collection paused inside a round)."""
    from persona_plugins import Message, PersonaPipeline

    pipeline = PersonaPipeline(instant_model(), persona=PERSONA)
    messages = [Message.system("You are a helpful AI assistant."), Message.user(QUESTION)]
    stopwatches = Stopwatches()
    plain: dict[str, list[float]] = {"run": [], "prepare": []}
    timed: dict[str, list[float]] = {"run": [], "prepare": []}

    async def batch(call: Callable[..., Awaitable[Any]], out: list[float], laps: bool) -> None:
        for _ in range(runs):
            started = time.perf_counter()
            await call(messages)
            elapsed = time.perf_counter() - started
            out.append(elapsed)
            if laps:
                stopwatches.lap(elapsed)

    for _ in range(warmup):
        await pipeline.run(messages)
        await pipeline.prepare(messages)

    async def one_kind(kind: str) -> None:
        undo = instrumented(stopwatches) if kind == "timed" else None
        try:
            for what, call in (("run", pipeline.run), ("prepare", pipeline.prepare)):
                target = (timed if undo else plain)[what]
                if undo and what == "prepare":
                    stopwatches.runs, kept = [], stopwatches.runs
                    await batch(call, target, laps=False)
                    stopwatches.runs = kept
                else:
                    await batch(call, target, laps=bool(undo))
        finally:
            if undo:
                undo()

    await in_rounds(["plain", "timed"], rounds, one_kind)
    steps = {
        name: statistics.median(run.get(name, 0.0) for run in stopwatches.runs) for name, _ in STEPS
    }
    return {
        "run": statistics.median(plain["run"]),
        "run_timed": statistics.median(timed["run"]),
        "prepare": statistics.median(plain["prepare"]),
        "steps": steps,
    }


# -- the wrapped framework calls, profiled ---------------------------------------------------------


def profile_calls(
    make: Callable[[], Awaitable[None]], runs: int
) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Own time (µs per call, under the profiler) and function calls per call, by area."""
    from bench_autogen_overhead import profile_area

    async def go() -> pstats.Stats:
        for _ in range(200):
            await make()
        gc.collect()
        gc.disable()
        profiler = cProfile.Profile()
        try:
            profiler.enable()
            for _ in range(runs):
                await make()
            profiler.disable()
        finally:
            gc.enable()
        return pstats.Stats(profiler)

    stats = asyncio.run(go())
    rows = stats.stats  # type: ignore[attr-defined]
    micros: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (filename, _, function), row in rows.items():
        area = profile_area(filename, function)
        if area.startswith("builtin"):
            area = "builtins (isinstance, getattr, dict and list methods, ...)"
        elif area.startswith("stdlib"):
            area = "standard library (asyncio, contextlib, ...)"
        elif area.startswith("this benchmark"):
            area = "the instant client and the timing loop"
        micros[area] += 1e6 * row[2] / runs
        calls[area] += row[1] / runs
    return micros, calls


def autogen_calls() -> dict[str, Callable[[], Awaitable[None]]]:
    import bench_autogen_overhead as autogen_bench

    variants = {v.name: v for v in autogen_bench.make_variants()}
    texts = autogen_bench.TaskTexts()

    def runner(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await autogen_bench.run_once(variants[name], texts())

        return run

    return {"raw": runner("raw"), "wrapped": runner("persona")}


def sk_calls() -> dict[str, Callable[[], Awaitable[None]]]:
    import bench_sk_overhead as sk_bench

    raw, wrapped = sk_bench.make_variants()

    async def run_raw() -> None:
        await sk_bench.get_response(raw)

    async def run_wrapped() -> None:
        await sk_bench.get_response(wrapped)

    return {"raw": run_raw, "wrapped": run_wrapped}


def profile_table(label: str, calls: dict[str, Callable[[], Awaitable[None]]], runs: int) -> str:
    raw_us, raw_calls = profile_calls(calls["raw"], runs)
    us, per_call = profile_calls(calls["wrapped"], runs)
    added = collections.Counter({area: us[area] - raw_us.get(area, 0.0) for area in us})
    total_added = sum(us.values()) - sum(raw_us.values())
    lines = [
        f"**{label}**: {sum(per_call.values()):.0f} Python function calls per call against "
        f"{sum(raw_calls.values()):.0f} for the raw one "
        f"(+{sum(per_call.values()) - sum(raw_calls.values()):.0f}); under the profiler "
        f"{sum(us.values()):.0f} µs against {sum(raw_us.values()):.0f} µs (+{total_added:.0f} µs).",
        "",
        "| own time added in | µs per call (profiled) | share of the added time | calls added |",
        "|---|---:|---:|---:|",
    ]
    for area, micros in added.most_common(12):
        if micros <= 0:
            break
        more = per_call[area] - raw_calls.get(area, 0.0)
        lines.append(
            f"| {area} | +{micros:.1f} | {100 * micros / total_added:.0f}% | +{more:.0f} |"
        )
    return "\n".join(lines)


# -- report ----------------------------------------------------------------------------------------


def core_table(core: dict[str, Any]) -> str:
    steps = core["steps"]
    stepped = sum(steps.values())
    added = core["run_timed"] - core["run"]
    lines = [
        "| step of `PersonaPipeline.run` | median per turn | share of the steps |",
        "|---|---:|---:|",
    ]
    for name, label in STEPS:
        lines.append(
            f"| {label} | {steps[name] * 1e6:.1f} µs | {100 * steps[name] / stepped:.0f}% |"
        )
    lines += [
        f"| the steps together | {stepped * 1e6:.1f} µs | 100% |",
        "| the rest of `run` (turn context, turn-span check, recording scope), by difference "
        f"from the plain run | {max(0.0, core['run'] - stepped) * 1e6:.1f} µs | |",
        "",
        f"`PersonaPipeline.run`, whole: {core['run'] * 1e6:.1f} µs per turn (with the stopwatches: "
        f"{core['run_timed'] * 1e6:.1f} µs, so they add {added * 1e6:.1f} µs, about "
        f"{added * 1e6 / len(STEPS):.1f} µs a step, part of it inside each step's figure). "
        f"`PersonaPipeline.prepare()`, whole (select and inject only, what the Semantic Kernel "
        f"wrapper runs for a persona-only call): {core['prepare'] * 1e6:.1f} µs.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--runs", type=int, default=300, help="turns per variant per round")
    parser.add_argument("--profile-runs", type=int, default=3000, help="calls profiled")
    parser.add_argument("--quick", action="store_true", help="a short run that only prints")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write benchmarks/RESULTS.md (default: yes, unless --quick)",
    )
    args, _ = parser.parse_known_args(argv)
    os.environ["PERSONA_PLUGINS_DISABLE_AUTOLOAD"] = "1"
    os.environ["AUTOGEN_DISABLE_RUNTIME_TRACING"] = "true"
    if args.quick:
        args.rounds, args.runs, args.profile_runs = 4, 100, 300
    write = (not args.quick) if args.write is None else args.write

    load = os.getloadavg()[0]
    core = asyncio.run(core_rounds(args.rounds, args.runs, warmup=300))
    autogen = profile_table(
        "`AssistantAgent.run` around `PersonaChatCompletionClient`",
        autogen_calls(),
        args.profile_runs,
    )
    sk = profile_table(
        "`ChatCompletionAgent.get_response` around `PersonaChatCompletion`",
        sk_calls(),
        args.profile_runs,
    )
    flags = " --quick" if args.quick else f" --rounds {args.rounds} --runs {args.runs}"
    body = "\n".join(
        [
            f"Command: `.venv/bin/python benchmarks/bench_hot_path.py{flags}`",
            "",
            f"Machine: {machine_note()}, load average {load:.2f} at the start. Persona "
            f"{PERSONA!r}, no ensemble, refinement or guardrails; tracing and metrics off. "
            f"{args.rounds} interleaved rounds x {args.runs} turns per variant.",
            "",
            "### The core turn, step by step (instant `ChatModel`)",
            "",
            core_table(core),
            "",
            f"### What the wrappers add, by module (cProfile, {args.profile_runs} calls each)",
            "",
            autogen,
            "",
            sk,
        ]
    )
    print(f"## {HEADING}\n\n{body}")
    if write:
        print(f"\nwrote {update_section(HEADING, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
