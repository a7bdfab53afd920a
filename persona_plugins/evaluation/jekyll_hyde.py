"""``persona-plugins eval jekyll-hyde``: persona-only, neutral-only, Jekyll & Hyde and SPP compared.

For each question, one Jekyll & Hyde turn gives the persona candidate, the neutral candidate and
the judged answer (so persona-only and neutral-only are the two candidates of that same turn), and
one more turn with ``persona_mode="multi"`` gives the SPP answer. Accuracy uses the exact answer
extraction of :mod:`persona_plugins.answers` against the gold answer.

Results are appended to a JSON-lines file as each question finishes; re-running the same command
resumes where it stopped. A markdown table and a JSON summary are written at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_plugins.answers import BUILTIN_EXTRACTORS
from persona_plugins.evaluation.datasets import Question
from persona_plugins.evaluation.progress import Progress
from persona_plugins.evaluation.records import by_name, run_resumable, write_summary
from persona_plugins.model import ChatModel
from persona_plugins.pipeline import PersonaPipeline

__all__ = ["FORMAT_INSTRUCTIONS", "SYSTEMS", "run_jekyll_hyde_eval", "summarize"]

#: Appended to each question so the final answer can be extracted exactly.
FORMAT_INSTRUCTIONS = {
    "number": "Think step by step, then end with the line: The answer is <number>.",
    "choice": "Think step by step, then end with the line: The answer is (<letter>).",
    "yes_no": "Think step by step, then end with the line: The answer is yes. (or no.)",
}
SYSTEMS = ("persona", "neutral", "jekyll_hyde", "spp")


@dataclass
class _Pipelines:
    jekyll_hyde: dict[str, PersonaPipeline] = field(default_factory=dict)
    spp: dict[str, PersonaPipeline] = field(default_factory=dict)


def _build(model: ChatModel, persona: str, fallback: str, settings: dict[str, Any]) -> _Pipelines:
    generated = persona == "generated"
    pipelines = _Pipelines()
    for fmt in FORMAT_INSTRUCTIONS:
        pipelines.jekyll_hyde[fmt] = PersonaPipeline(
            model,
            persona=fallback if generated else persona,
            persona_mode="generated" if generated else "static",
            ensemble="jekyll_hyde",
            answer_format=fmt,
            model_settings=settings,
        )
        pipelines.spp[fmt] = PersonaPipeline(
            model, persona_mode="multi", answer_format=fmt, model_settings=settings
        )
    return pipelines


async def _one(question: Question, pipelines: _Pipelines, systems: Sequence[str]) -> dict[str, Any]:
    prompt = f"{question.text}\n\n{FORMAT_INSTRUCTIONS[question.answer_format]}"
    extract = BUILTIN_EXTRACTORS[question.answer_format]
    record: dict[str, Any] = {"id": question.id, "gold": question.gold, "systems": {}}
    if {"persona", "neutral", "jekyll_hyde"} & set(systems):
        turn = await pipelines.jekyll_hyde[question.answer_format].run(prompt)
        persona_writer_calls = 1 if turn.persona_source in ("generated", "fallback") else 0
        by_name = {c.name: c for c in turn.candidates}
        for name in ("persona", "neutral"):
            candidate = by_name.get(name)
            if candidate is None:
                continue
            answer = extract(candidate.text) if candidate.ok else None
            record["systems"][name] = {
                "answer": answer,
                "correct": answer == question.gold,
                "calls": candidate.model_calls + (persona_writer_calls if name == "persona" else 0),
                "tokens": candidate.usage.total_tokens,
            }
        answer = extract(turn.text)
        judgement = turn.judgement
        record["systems"]["jekyll_hyde"] = {
            "answer": answer,
            "correct": answer == question.gold,
            "calls": turn.model_calls,
            "tokens": turn.usage.total_tokens,
            "chosen": turn.chosen,
            "judged": bool(judgement and judgement.model_calls),
            "consistent": bool(judgement and judgement.consistent),
            "fallback": bool(judgement and judgement.fallback),
            "persona": turn.persona.description if turn.persona else None,
            "persona_source": turn.persona_source,
        }
    if "spp" in systems:
        turn = await pipelines.spp[question.answer_format].run(prompt)
        answer = extract(turn.text)
        spp = next((c for c in turn.candidates if c.name == "spp"), None)
        record["systems"]["spp"] = {
            "answer": answer,
            "correct": answer == question.gold,
            "calls": turn.model_calls,
            "tokens": turn.usage.total_tokens,
            "marker_missing": bool(spp and spp.metadata.get("marker_missing")),
        }
    return record


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, model calls and tokens per question for each system, plus judge statistics."""
    summary: dict[str, Any] = {"questions": len(records), "systems": {}}
    for system, rows in by_name(records, "systems", SYSTEMS):
        n = len(rows)
        entry = {
            "n": n,
            "correct": sum(r["correct"] for r in rows),
            "accuracy": sum(r["correct"] for r in rows) / n,
            "calls_per_question": sum(r["calls"] for r in rows) / n,
            "tokens_per_question": sum(r["tokens"] for r in rows) / n,
        }
        if system == "jekyll_hyde":
            entry["judged_share"] = sum(r["judged"] for r in rows) / n
            judged = [r for r in rows if r["judged"]]
            entry["consistent_share_of_judged"] = (
                sum(r["consistent"] for r in judged) / len(judged) if judged else None
            )
            entry["fallback_share"] = sum(r["fallback"] for r in rows) / n
        if system == "spp":
            entry["marker_missing_share"] = sum(r["marker_missing"] for r in rows) / n
        summary["systems"][system] = entry
    return summary


def markdown_table(dataset: str, summary: dict[str, Any], model_label: str) -> str:
    lines = [
        f"**{dataset}**, {summary['questions']} questions, {model_label}",
        "",
        "| system | accuracy | correct | model calls / question | tokens / question |",
        "|---|---|---|---|---|",
    ]
    for system, entry in summary["systems"].items():
        lines.append(
            f"| {system} | {100 * entry['accuracy']:.1f}% | {entry['correct']}/{entry['n']} | "
            f"{entry['calls_per_question']:.2f} | {entry['tokens_per_question']:.0f} |"
        )
    jh = summary["systems"].get("jekyll_hyde")
    if jh:
        consistent = jh["consistent_share_of_judged"]
        lines += [
            "",
            f"Jekyll & Hyde: judge called on {100 * jh['judged_share']:.0f}% of questions "
            "(the rest agreed), consistent verdicts on "
            + (f"{100 * consistent:.0f}%" if consistent is not None else "n/a")
            + f" of those, fallback used on {100 * jh['fallback_share']:.0f}% of questions.",
        ]
    spp = summary["systems"].get("spp")
    if spp:
        missing = 100 * spp["marker_missing_share"]
        lines.append(f"SPP: final-answer marker missing on {missing:.0f}% of replies.")
    return "\n".join(lines)


async def run_jekyll_hyde_eval(
    questions: Sequence[Question],
    model: ChatModel,
    *,
    out_dir: Path,
    dataset: str,
    persona: str = "generated",
    fallback_persona: str = "math_teacher",
    systems: Sequence[str] = SYSTEMS,
    settings: dict[str, Any] | None = None,
    model_label: str = "",
    progress: Progress | None = None,
    concurrency: int = 1,
) -> dict[str, Any]:
    """Run (or resume) the comparison and write ``jekyll_hyde_<dataset>.jsonl``, ``.json`` and
    ``.md`` in ``out_dir``.

    Questions already answered in the ``.jsonl`` file are not asked again; up to ``concurrency``
    are asked at once, with ``progress`` on stderr
    (:func:`~persona_plugins.evaluation.records.run_resumable`). The figures are those of a
    sequential run whatever order the questions finish in.
    """
    pipelines = _build(model, persona, fallback_persona, settings or {})

    async def one(question: Question) -> tuple[dict[str, Any], str]:
        record = await _one(question, pipelines, systems)
        correct = {k: v["correct"] for k, v in record["systems"].items()}
        return record, " ".join(f"{k}={'+' if v else '-'}" for k, v in correct.items())

    done = await run_resumable(
        questions,
        one,
        path=out_dir / f"jekyll_hyde_{dataset}.jsonl",
        progress=progress,
        name=f"jekyll-hyde {dataset}",
        unit="questions",
        detail=f"(systems: {', '.join(systems)})",
        model_label=model_label,
        concurrency=concurrency,
    )
    records = [done[q.id] for q in questions if q.id in done]
    summary = summarize(records)
    summary.update(dataset=dataset, model=model_label, persona=persona)
    summary["markdown"] = markdown_table(dataset, summary, model_label)
    write_summary(out_dir / f"jekyll_hyde_{dataset}", summary)
    return summary
