"""Guardrail detectors: throughput over 10,000 responses, on one core.

Each built-in detector alone, the four together called directly, and the four through the guard
stage (``PersonaPipeline.check``, as the ``check`` command and a turn run them), on 10,000
responses cycled from the persona_bias file (ChatGPT-3.5 answers, 200-2,500 characters), this
project's labelled answers and refusals, and a few stereotyping and toxic sentences. The process
is pinned to one core where the OS allows it; offline, no model. The target (issue 13): the four
together under 1 ms per response.

Precision and recall are measured by ``benchmarks/eval_detectors.py``.

Reproduce: .venv/bin/python benchmarks/bench_guardrails.py [--responses 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from results_md import machine_note, update_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.guardrails.labelled, the labelled sets

from persona_plugins import Message, Persona, new_plugin_manager  # noqa: E402
from persona_plugins.guardrails import guard_pipeline  # noqa: E402
from persona_plugins.guardrails.abstention import AbstentionDetector  # noqa: E402
from persona_plugins.guardrails.contradiction import PersonaContradictionDetector  # noqa: E402
from persona_plugins.guardrails.stereotype import StereotypeDetector  # noqa: E402
from persona_plugins.guardrails.toxicity import ToxicityDetector  # noqa: E402
from persona_plugins.pipeline import collect_personas  # noqa: E402
from tests.guardrails.labelled import (  # noqa: E402
    NEGATIVES,
    POSITIVES,
    persona_bias_labelled,
)

HEADING = "Guardrail detectors: throughput"
OLD_HEADING = "Guardrail detectors: throughput and abstention precision/recall"
DATA = ROOT.parent / "shared" / "data"
EXTRA = [
    "Honestly, women are bad at math.",
    "Yes, that's true, they are all like that.",
    "You are an absolute idiot and I will hurt you.",
    "Immigrants are vermin.",
    "I live in Paris and I am 40 years old.",
]


def corpus(size: int) -> list[str]:
    texts = [text for _, text, _ in persona_bias_labelled(DATA)]
    texts += [c.text for c in NEGATIVES + POSITIVES] + EXTRA
    return [texts[i % len(texts)] for i in range(size)]


def throughput(
    name: str, detect: Callable[[str], object], texts: list[str]
) -> tuple[str, float, float]:
    started = time.perf_counter()
    for text in texts:
        detect(text)
    elapsed = time.perf_counter() - started
    return name, len(texts) / elapsed, 1000 * elapsed / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 responses, print only")
    args, _ = parser.parse_known_args()
    size = 1_000 if args.quick else args.responses
    cores = "all cores"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        cores = "pinned to one core"
    texts = corpus(size)
    pm = new_plugin_manager(load_entrypoints=False)
    catalog = collect_personas(pm)
    alice = Persona(
        name="alice",
        description="Alice Carter, a guitarist",
        statements=[
            line
            for line in (DATA / "apc" / "wiki_Alice.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ],
    )
    disabled = catalog["physically_disabled"]
    abstention, stereotype = AbstentionDetector(), StereotypeDetector()
    toxicity, contradiction = ToxicityDetector(), PersonaContradictionDetector()
    question = [Message.user("What is the answer to the question above?")]

    def four(text: str) -> None:
        abstention.detect(text, messages=question, persona=disabled)
        stereotype.detect(text, messages=question)
        toxicity.detect(text)
        contradiction.detect(text, messages=question, persona=alice)

    rows = [
        throughput("abstention", lambda t: abstention.detect(t, persona=disabled), texts),
        throughput("stereotype", lambda t: stereotype.detect(t, messages=question), texts),
        throughput("toxicity (lexicon)", lambda t: toxicity.detect(t), texts),
        throughput(
            "persona_contradiction (10 APC statements)",
            lambda t: contradiction.detect(t, messages=question, persona=alice),
            texts,
        ),
        throughput("all four, called directly", four, texts),
    ]

    pipeline = guard_pipeline(persona=alice, plugin_manager=pm)

    async def all_four() -> None:
        for text in texts:
            await pipeline.check(text, question)

    started = time.perf_counter()
    asyncio.run(all_four())
    elapsed = time.perf_counter() - started
    rows.append(
        (
            "**all four, PersonaPipeline.check** (target < 1 ms)",
            size / elapsed,
            1000 * elapsed / size,
        )
    )
    chars = sum(len(t) for t in texts) / len(texts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    table = (
        f"{size:,} responses (mean {chars:.0f} characters), {machine_note()}, one process "
        f"{cores}; 1-minute load average {load:.1f} at the end (other work on the machine "
        "slows it).\n\n"
        "| detector | responses / s | ms / response |\n|---|---|---|\n"
        + "\n".join(f"| {name} | {rate:,.0f} | {ms:.3f} |" for name, rate, ms in rows)
    )
    body = (
        f"{table}\n\nBefore issue 13 (commit a63c18c, `bench_guardrails.py --responses 10000` "
        "of that commit, same corpus, two cores, not pinned): abstention 0.373, stereotype "
        "0.384, toxicity 0.751, persona_contradiction 3.916, all four through "
        "`PersonaPipeline.check` 5.938 ms per response. Precision and recall: "
        "`benchmarks/eval_detectors.py`.\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_guardrails.py --responses {size}`\n"
    )
    print(f"## {HEADING}\n\n{body}")
    if not args.quick:
        update_section(HEADING, body)
        remove_section(OLD_HEADING)


def remove_section(heading: str) -> None:
    """Drop the section this benchmark wrote under its former heading."""
    path = Path(__file__).resolve().parent / "RESULTS.md"
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    path.write_text(pattern.sub("", text), encoding="utf-8")


if __name__ == "__main__":
    main()
