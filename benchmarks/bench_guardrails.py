"""Guardrail detectors: throughput over 10,000 responses, and the abstention precision/recall.

Throughput: each built-in detector, then all four through the guard stage
(``PersonaPipeline.check``, as the ``check`` command runs them), on 10,000
responses cycled from the persona_bias file (ChatGPT-3.5 answers, 200-2,500 characters), this
project's labelled answers and refusals, and a few stereotyping and toxic sentences. One core,
offline, no model.

Precision and recall of the abstention detector (only findings of kind ``refusal`` count as
positive predictions) on the persona_bias file, labelled by the rule in
``persona_plugins/guardrails/abstention.py`` (see ``tests/guardrails/labelled.py``), plus the
project's negative set and its extra positives.

Reproduce: .venv/bin/python benchmarks/bench_guardrails.py [--responses 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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

HEADING = "Guardrail detectors: throughput and abstention precision/recall"
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


def precision_recall(catalog: dict[str, Persona]) -> list[tuple[str, int, int, int, int]]:
    detector = AbstentionDetector()

    def refusal(text: str, question: str = "", persona: str | None = None) -> bool:
        messages = [Message.user(question)] if question else []
        found = detector.detect(
            text, messages=messages, persona=catalog.get(persona) if persona else None
        )
        return any(f.metadata.get("kind") == "refusal" for f in found)

    sets = {
        "persona_bias file (ChatGPT-3.5, physically-disabled persona)": [
            (refusal(text), label) for _, text, label in persona_bias_labelled(DATA)
        ],
        "project negative set (ordinary answers and refusals)": [
            (refusal(c.text, c.question, c.persona), False) for c in NEGATIVES
        ],
        "project positives (other personas and wordings)": [
            (refusal(c.text, c.question, c.persona), True) for c in POSITIVES
        ],
    }
    rows = []
    for name, pairs in sets.items():
        tp = sum(p and label for p, label in pairs)
        fp = sum(p and not label for p, label in pairs)
        fn = sum((not p) and label for p, label in pairs)
        tn = sum((not p) and (not label) for p, label in pairs)
        rows.append((name, tp, fp, fn, tn))
    headline = rows[0][1:], rows[1][1:]
    rows.append(
        (
            "**persona_bias file + negative set (the issue's target)**",
            *(a + b for a, b in zip(*headline, strict=True)),
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 responses, print only")
    args, _ = parser.parse_known_args()
    size = 1_000 if args.quick else args.responses
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
    rows = [
        throughput("abstention", lambda t: abstention.detect(t, persona=disabled), texts),
        throughput("stereotype", lambda t: stereotype.detect(t, messages=question), texts),
        throughput("toxicity (lexicon)", lambda t: toxicity.detect(t), texts),
        throughput(
            "persona_contradiction (10 APC statements)",
            lambda t: contradiction.detect(t, messages=question, persona=alice),
            texts,
        ),
    ]

    pipeline = guard_pipeline(persona=alice, plugin_manager=pm)

    async def all_four() -> None:
        for text in texts:
            await pipeline.check(text, question)

    started = time.perf_counter()
    asyncio.run(all_four())
    elapsed = time.perf_counter() - started
    rows.append(("all four, PersonaPipeline.check", size / elapsed, 1000 * elapsed / size))
    chars = sum(len(t) for t in texts) / len(texts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    table = (
        f"{size:,} responses (mean {chars:.0f} characters), {machine_note()}, one process; "
        f"1-minute load average {load:.1f} at the end (other work on the machine slows it).\n\n"
        "| detector | responses / s | ms / response |\n|---|---|---|\n"
        + "\n".join(f"| {name} | {rate:,.0f} | {ms:.3f} |" for name, rate, ms in rows)
    )
    pr_rows = precision_recall(catalog)
    pr = (
        "Abstention detector; a positive prediction is a finding of kind `refusal`. Labels: the "
        "rule in `persona_plugins/guardrails/abstention.py`, applied as described in "
        "`tests/guardrails/labelled.py` (the file's empty `predicted_answer` marks a refusal, "
        "every response read to confirm; one override, id 64). These are in-sample figures: "
        "the persona_bias file was the detector's development set, and the project's sets were "
        "written alongside it; expect less on wordings it has not seen.\n\n"
        "| set | TP | FP | FN | TN | precision | recall |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {name} | {tp} | {fp} | {fn} | {tn} | "
            f"{f'{tp / (tp + fp):.3f}' if tp + fp else 'n/a (no positive call)'} | "
            f"{f'{tp / (tp + fn):.3f}' if tp + fn else 'n/a (no positives)'} |"
            for name, tp, fp, fn, tn in pr_rows
        )
    )
    body = (
        f"### Throughput\n\n{table}\n\n### Abstention precision and recall\n\n{pr}\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_guardrails.py --responses {size}`\n"
    )
    print(f"## {HEADING}\n\n{body}")
    if not args.quick:
        update_section(HEADING, body)


if __name__ == "__main__":
    main()
