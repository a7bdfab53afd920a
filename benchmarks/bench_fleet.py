"""Concurrency and fleets: the Jekyll & Hyde harness and the audit at ``--concurrency`` 1 and 8
against a fake OpenAI-compatible server with a fixed latency per call, and the audit over a fleet
of two such servers.

The server (``tests/integrations/fake_openai_server.py``) runs in this process on loopback, waits
``--latency`` seconds (0.2 by default) before each answer, and answers from a hash of the request,
so a question gets the same answer at any concurrency and on any server: the figures of every run
must be identical, and the script checks that they are. The fleet rows give each server 4 slots
(it works on 4 requests at once and queues the rest, as a model server's batch size bounds it):
one such server at concurrency 8 against two sharing the calls.

Reproduce: .venv/bin/python benchmarks/bench_fleet.py [--latency 0.2] [--questions 24]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from results_md import machine_note, update_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.integrations.fake_openai_server

from persona_plugins.cli._common import catalog  # noqa: E402
from persona_plugins.evaluation.audit import run_audit  # noqa: E402
from persona_plugins.evaluation.datasets import Question  # noqa: E402
from persona_plugins.evaluation.jekyll_hyde import run_jekyll_hyde_eval  # noqa: E402
from persona_plugins.evaluation.progress import Progress  # noqa: E402
from persona_plugins.integrations.openai_compatible import (  # noqa: E402
    OpenAICompatibleChatModel,
    OpenAICompatiblePool,
)
from persona_plugins.model import ChatModel  # noqa: E402
from tests.integrations.fake_openai_server import FakeOpenAIServer  # noqa: E402

HEADING = "Concurrency and fleets: harnesses against a server with a fixed latency"
AUDIT_PERSONAS = ("average_human", "human", "woman", "man")


def questions(count: int) -> list[Question]:
    half = count // 2
    return [
        Question(f"q{i}", f"Is {i} an even number?", "yes" if i % 2 == 0 else "no", "yes_no")
        for i in range(half)
    ] + [Question(f"n{i}", f"What is {i} plus 2?", str(i + 2), "number") for i in range(half)]


Harness = Callable[[ChatModel, Path, int], Awaitable[dict[str, Any]]]


def jekyll_hyde(items: list[Question]) -> Harness:
    async def harness(model: ChatModel, out: Path, concurrency: int) -> dict[str, Any]:
        return await run_jekyll_hyde_eval(
            items,
            model,
            out_dir=out,
            dataset="bench",
            persona="math_teacher",
            progress=Progress(io.StringIO(), ticker=False),
            concurrency=concurrency,
        )

    return harness


def audit(items: list[Question]) -> Harness:
    known = catalog()
    personas = [known[name] for name in AUDIT_PERSONAS]

    async def harness(model: ChatModel, out: Path, concurrency: int) -> dict[str, Any]:
        summary = await run_audit(
            items,
            model,
            personas,
            out_dir=out,
            baselines=AUDIT_PERSONAS[:2],
            title="bench",
            progress=Progress(io.StringIO(), ticker=False),
            concurrency=concurrency,
        )
        summary.pop("chart", None)
        return summary

    return harness


def measure(
    harness: Harness, urls: list[str], concurrency: int
) -> tuple[float, dict[str, Any], list[int] | None]:
    """Wall time, figures, and calls per server (fleets only) of one fresh run."""
    model: Any = (
        OpenAICompatiblePool(urls, model="fake")
        if len(urls) > 1
        else OpenAICompatibleChatModel(urls[0], model="fake")
    )
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = asyncio.run(harness(model, Path(out), concurrency))
        elapsed = time.perf_counter() - started
    calls = [s["calls"] for s in model.server_stats()] if len(urls) > 1 else None
    figures = json.loads(json.dumps({k: v for k, v in summary.items() if k != "markdown"}))
    return elapsed, figures, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per call (0.2)")
    parser.add_argument("--questions", type=int, default=24, help="questions per run (24)")
    parser.add_argument("--quick", action="store_true", help="a short run; RESULTS.md untouched")
    args = parser.parse_args()
    count = 8 if args.quick else args.questions
    latency = 0.05 if args.quick else args.latency
    items = questions(count)
    rows: list[list[str]] = []
    all_identical = True

    with FakeOpenAIServer(latency) as server:
        for name, harness, unit in (
            ("Jekyll & Hyde harness", jekyll_hyde(items), f"{len(items)} questions"),
            ("audit", audit(items), f"{len(AUDIT_PERSONAS)} personas x {len(items)} questions"),
        ):
            base_time, base_figures, _ = measure(harness, [server.base_url], 1)
            rows.append([name, unit, "1", "1", f"{base_time:.1f}", "1.0x", "-", "-"])
            for concurrency in (8,):
                elapsed, figures, _ = measure(harness, [server.base_url], concurrency)
                same = figures == base_figures
                all_identical &= same
                rows.append(
                    [
                        name,
                        unit,
                        str(concurrency),
                        "1",
                        f"{elapsed:.1f}",
                        f"{base_time / elapsed:.1f}x",
                        "-",
                        "yes" if same else "NO",
                    ]
                )

    harness = audit(items)
    unit = f"{len(AUDIT_PERSONAS)} personas x {len(items)} questions"
    with FakeOpenAIServer(latency, slots=4) as one:
        alone, alone_figures, _ = measure(harness, [one.base_url], 8)
    with FakeOpenAIServer(latency, slots=4) as first, FakeOpenAIServer(latency, slots=4) as second:
        shared, shared_figures, calls = measure(harness, [first.base_url, second.base_url], 8)
    same = shared_figures == alone_figures
    all_identical &= same
    rows.append(["audit, 1 server (4 slots)", unit, "8", "1", f"{alone:.1f}", "1.0x", "-", "-"])
    rows.append(
        [
            "audit, fleet of 2 (4 slots each)",
            unit,
            "8",
            "2",
            f"{shared:.1f}",
            f"{alone / shared:.1f}x",
            " / ".join(map(str, calls or [])),
            "yes" if same else "NO",
        ]
    )

    header = [
        "run",
        "size",
        "concurrency",
        "servers",
        "wall time (s)",
        "speed-up",
        "calls per server",
        "same figures",
    ]
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(row) + " |" for row in rows]
    )
    print(table)
    if not all_identical:
        print("FIGURES DIFFER between runs", file=sys.stderr)
    if args.quick:
        return
    body = (
        f"{machine_note()}. A fake OpenAI-compatible server on loopback in the same process, "
        f"{latency} s per call, answers drawn from a hash of each request (the same question gets "
        "the same answer at any concurrency and on any server). Speed-up: against the row above "
        "it (concurrency 1; for the fleet, one server). Same figures: the summary (accuracy, "
        "calls and tokens per question, judge statistics; for the audit accuracy, refusals, "
        "McNemar counts and p-values, raw and Holm-adjusted) equals that of the run it is "
        "compared with. The Jekyll & Hyde harness makes up to 2 calls at once per question "
        "(the persona and neutral candidates; the judge's two orders), then the SPP turn.\n\n"
        f"{table}\n\n"
        "Reproduce: `.venv/bin/python benchmarks/bench_fleet.py --latency "
        f"{args.latency} --questions {args.questions}`"
    )
    update_section(HEADING, body)


if __name__ == "__main__":
    main()
