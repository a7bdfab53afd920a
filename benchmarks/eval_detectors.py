"""Guardrail detectors: precision and recall on labelled text, plain and disguised.

The abstention and stereotype detectors on the project's labelled sets
(``tests/guardrails/data``, built and described in ``tests/guardrails/datasets.py``):

- **dev**: what the detectors were tuned on (templated items whose hash puts them in ``dev``,
  and the hand-written development sentences);
- **held back, templated**: items from the same templates that the split kept out of tuning;
- **held back, hand-written**: sentences written separately, with other personas, tasks and
  wordings, never used for tuning (the honest estimate on unseen text);

each plain and disguised (zero-width spaces, soft hyphens, Cyrillic look-alikes, full-width
letters, markdown emphasis, and all at once). Plus the external figure: the abstention detector
on the allenai persona-bias file (99 ChatGPT-3.5 answers as "a physically-disabled person",
read from ``../shared/data``, labelled as in ``tests/guardrails/labelled.py``).

A positive prediction is a finding of kind ``refusal`` (abstention) or any ``warning`` or
``high`` finding (stereotype).

Reproduce: .venv/bin/python benchmarks/eval_detectors.py [--show-errors dev]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from results_md import machine_note, update_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.guardrails, the labelled sets

from tests.guardrails.datasets import confusion, load, subsets  # noqa: E402
from tests.guardrails.labelled import persona_bias_labelled  # noqa: E402

HEADING = "Guardrail detectors: precision and recall on labelled text"
DATA = ROOT.parent / "shared" / "data"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def rows() -> list[tuple[str, str, dict]]:
    out = []
    for detector in ("abstention", "stereotype"):
        for name, items in subsets(load(detector)).items():
            out.append((detector, name, confusion(detector, items)))
    if DATA.is_dir():
        external = [
            {"text": text, "label": label, "question": ""}
            for _, text, label in persona_bias_labelled(DATA)
        ]
        out.append(
            (
                "abstention",
                "external: allenai persona-bias file (99 ChatGPT-3.5 answers)",
                confusion("abstention", external),
            )
        )
    return out


def neutral_texts() -> dict[str, list[str]]:
    """Public text with no persona-induced refusal and no stereotype of its own: every finding
    on it is a false positive. PersonaGym questions often *report* a stereotype ("a colleague
    insists that women can't ..."), which is not one."""
    import json

    if not DATA.is_dir():
        return {}
    gsm = [
        json.loads(line)
        for line in (DATA / "reasoning" / "gsm8k_test.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    questions = json.loads((DATA / "persona_gym" / "questions.json").read_text("utf-8"))
    return {
        "GSM8K test questions": [row["question"] for row in gsm],
        "GSM8K worked answers": [row["answer"] for row in gsm],
        "PersonaGym personas": json.loads(
            (DATA / "persona_gym" / "personas.json").read_text("utf-8")
        ),
        "PersonaGym questions (all five tasks)": [
            q for tasks in questions.values() for qs in tasks.values() for q in qs
        ],
    }


def false_positives() -> list[tuple[str, int, int, int, int]]:
    from persona_plugins.guardrails import abstention, stereotype, toxicity

    out = []
    for name, texts in neutral_texts().items():
        refusals = sum(
            any(f.metadata.get("kind") == "refusal" for f in abstention.DEFAULT.detect(t))
            for t in texts
        )
        stereotypes = sum(bool(stereotype.DEFAULT.detect(t)) for t in texts)
        toxic = sum(any(f.severity == "high" for f in toxicity.DEFAULT.detect(t)) for t in texts)
        out.append((name, len(texts), refusals, stereotypes, toxic))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="print only")
    parser.add_argument(
        "--show-errors",
        metavar="SPLIT",
        choices=["dev"],
        help="list the development items the detectors get wrong (never the held-back ones)",
    )
    args, _ = parser.parse_known_args()
    measured = rows()
    table = (
        "| detector | set | TP | FP | FN | TN | precision | recall |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {detector} | {name} | {r['tp']} | {r['fp']} | {r['fn']} | {r['tn']} | "
            f"{_rate(r['precision'])} | {_rate(r['recall'])} |"
            for detector, name, r in measured
        )
    )
    body = (
        f"{machine_note()}. Sets: `tests/guardrails/data` (written for this project; see "
        "`tests/guardrails/datasets.py`). Tuned on the dev rows only; the held-back, "
        "hand-written rows are the estimate for text the detectors were not written for. "
        "Disguised rows are every refusal and stereotype once per disguise (zero-width spaces, "
        "soft hyphens, Cyrillic look-alikes, full-width letters, markdown emphasis, all at "
        "once) and a quarter of the look-alikes with one.\n\n"
        f"{table}\n\n"
        "False positives on neutral public text (`../shared/data`; every finding is wrong). The "
        "stereotype detector's reported-speech rule was added after this check first found 6 "
        "PersonaGym questions that quote someone's stereotype, so that row is no longer unseen "
        "text.\n\n"
        "| text | items | abstention (refusal) | stereotype | toxicity (high) |\n"
        "|---|---|---|---|---|\n"
        + "\n".join(f"| {n} | {c:,} | {a} | {st} | {t} |" for n, c, a, st, t in false_positives())
        + "\n\nReproduce: `.venv/bin/python benchmarks/eval_detectors.py`\n"
    )
    print(f"## {HEADING}\n\n{body}")
    if args.show_errors:
        for detector, name, r in measured:
            if name.startswith(args.show_errors):
                for line in r["wrong"]:
                    print(f"{detector} | {name} | {line}")
    if not args.quick:
        update_section(HEADING, body)


if __name__ == "__main__":
    main()
