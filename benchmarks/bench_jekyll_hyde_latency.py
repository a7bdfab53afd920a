"""Jekyll & Hyde wall time on a model with a fixed simulated latency L.

The persona and neutral candidates run concurrently (1 L), and the judge's two orders run
concurrently (1 L more), so the method's floor is 1 L when the candidates agree and 2 L when they
are judged. A naive sequential implementation (persona, neutral, judge A-B, judge B-A, one after
the other) takes 4 L. Both are measured side by side in one run.

Reproduce: .venv/bin/python benchmarks/bench_jekyll_hyde_latency.py [--latency 0.2] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from results_md import machine_note, update_section

from persona_plugins import Completion, Message, PersonaPipeline, Usage, new_plugin_manager
from persona_plugins.judging import build_judge_messages

HEADING = "Jekyll & Hyde wall time on a simulated-latency model"


class LatencyModel:
    """Answers after a fixed delay; persona and neutral answers agree or not, as asked."""

    model_name = "simulated-latency"

    def __init__(self, latency: float, agree: bool):
        self.latency = latency
        self.agree = agree
        self.calls = 0

    async def complete(self, messages, **settings):
        self.calls += 1
        await asyncio.sleep(self.latency)
        system = messages[0].content if messages and messages[0].role == "system" else ""
        if system.startswith("You are an impartial grader"):
            # A consistent judge: it prefers the answer 42 in whichever position it is shown.
            body = messages[-1].content
            text = "Verdict: 1" if body.index("42") < body.index("Candidate 2 is") else "Verdict: 2"
        elif system.startswith("You are") and not self.agree:
            text = "Step by step... The answer is 41."
        else:
            text = "Step by step... The answer is 42."
        return Completion(text=text, usage=Usage(input_tokens=10, output_tokens=5))


async def naive_sequential(model: LatencyModel, question: str) -> None:
    """The reference: every call one after the other, as a plain loop would do it."""
    persona = await model.complete([Message.system("You are a teacher."), Message.user(question)])
    neutral = await model.complete([Message.user(question)])
    for first, second in ((persona, neutral), (neutral, persona)):
        await model.complete(build_judge_messages(question, first.text, second.text))


async def measure(latency: float, repeats: int) -> dict[str, tuple[float, float]]:
    pm = new_plugin_manager(load_entrypoints=False)
    question = "What is 6 * 7?"
    out: dict[str, tuple[float, float]] = {}
    for label, agree in (("candidates agree", True), ("candidates judged", False)):
        times, calls = [], []
        for _ in range(repeats):
            model = LatencyModel(latency, agree)
            pipeline = PersonaPipeline(
                model, persona="math_teacher", ensemble="jekyll_hyde", plugin_manager=pm
            )
            start = time.perf_counter()
            await pipeline.run(question)
            times.append(time.perf_counter() - start)
            calls.append(model.calls)
        out[label] = (statistics.median(times) / latency, statistics.median(calls))
    times, calls = [], []
    for _ in range(repeats):
        model = LatencyModel(latency, agree=False)
        start = time.perf_counter()
        await naive_sequential(model, question)
        times.append(time.perf_counter() - start)
        calls.append(model.calls)
    out["naive sequential (reference)"] = (
        statistics.median(times) / latency,
        statistics.median(calls),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="L in seconds")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats, print only")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args, _ = parser.parse_known_args()  # run_all.py may pass options meant for other scripts
    repeats = 3 if args.quick else args.repeats
    results = asyncio.run(measure(args.latency, repeats))
    rows = "\n".join(
        f"| {label} | {ratio:.2f} L | {calls:.0f} |" for label, (ratio, calls) in results.items()
    )
    table = (
        f"L = {args.latency} s, median of {repeats} runs, {machine_note()}. "
        "Targets: <= 1.1 L when the candidates agree, <= 2.2 L when judged.\n\n"
        "| case | wall time | model calls |\n|---|---|---|\n"
        f"{rows}\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_jekyll_hyde_latency.py --latency "
        f"{args.latency} --repeats {repeats}`\n"
    )
    print(f"## {HEADING}\n\n{table}")
    if not (args.no_write or args.quick):
        update_section(HEADING, table)


if __name__ == "__main__":
    main()
