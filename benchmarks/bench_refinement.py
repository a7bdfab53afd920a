"""Refinement cost: wall time on a simulated-latency model, per strategy, side by side.

Each reviewer, planner and merge call takes a fixed latency L. Sequential runs the three reviewers
one after another (3 L); parallel runs them concurrently and merges once (about 2 L: one reviewer
latency plus the merge); adaptive adds a planner call and runs only what it chose. The draft call
(1 L) is the same for all and is excluded by refining a given draft with ``PersonaPipeline.refine``.

Reproduce: .venv/bin/python benchmarks/bench_refinement.py [--latency 0.2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from results_md import machine_note, update_section

from persona_plugins import Completion, PersonaPipeline, Usage, new_plugin_manager
from persona_plugins.refinement import MERGE_SYSTEM_PROMPT

HEADING = "Refinement wall time on a simulated-latency model"
DRAFT = "Paris is the capital of France. It has about two million inhabitants."


class LatencyModel:
    """Every reviewer asks for a change; the planner picks two reviewers."""

    model_name = "simulated-latency"

    def __init__(self, latency: float):
        self.latency = latency
        self.calls = 0

    async def complete(self, messages, **settings):
        self.calls += 1
        await asyncio.sleep(self.latency)
        system = messages[0].content
        if system.startswith("You coordinate reviewers"):
            text = "PLAN: factuality, coherence\nRATIONALE: facts and order."
        elif system == MERGE_SYSTEM_PROMPT:
            text = "Paris is the capital of France, with about 2.1 million inhabitants."
        else:
            text = f"VERDICT: REVISE\nFEEDBACK: tighten.\nREVISION: Paris, revision {self.calls}."
        return Completion(text=text, usage=Usage(input_tokens=50, output_tokens=20))


async def measure(latency: float, repeats: int) -> list[tuple[str, float, float]]:
    pm = new_plugin_manager(load_entrypoints=False)
    rows = []
    for strategy in ("sequential", "parallel", "adaptive"):
        times, calls = [], []
        for _ in range(repeats):
            model = LatencyModel(latency)
            pipeline = PersonaPipeline(
                model, persona="historian", refine=strategy, plugin_manager=pm
            )
            start = time.perf_counter()
            await pipeline.refine("What is the capital of France?", DRAFT)
            times.append(time.perf_counter() - start)
            calls.append(model.calls)
        rows.append((strategy, statistics.median(times) / latency, statistics.median(calls)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="L in seconds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats, print only")
    args, _ = parser.parse_known_args()
    repeats = 3 if args.quick else args.repeats
    rows = asyncio.run(measure(args.latency, repeats))
    table = (
        f"L = {args.latency} s, median of {repeats} runs, {machine_note()}; one round, persona "
        "set, every reviewer asking for a change (the worst case). Target: parallel close to one "
        "reviewer call plus the merge (2 L).\n\n"
        "| strategy | wall time | model calls |\n|---|---|---|\n"
        + "\n".join(f"| {name} | {ratio:.2f} L | {calls:.0f} |" for name, ratio, calls in rows)
        + f"\n\nReproduce: `.venv/bin/python benchmarks/bench_refinement.py --latency "
        f"{args.latency} --repeats {repeats}`\n"
    )
    print(f"## {HEADING}\n\n{table}")
    if not args.quick:
        update_section(HEADING, table)


if __name__ == "__main__":
    main()
