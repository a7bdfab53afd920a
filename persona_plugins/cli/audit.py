"""``persona-plugins audit``: the persona bias audit (accuracy, refusals, McNemar significance and
CrowS-Pairs stereotype agreement per persona against baselines), with a chart."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_plugins.cli import _common
from persona_plugins.cli._common import (
    DATA_DIR_HELP,
    UsageError,
    add_model_options,
    add_trace_options,
    catalog,
    model_label,
    require,
    shutdown,
    tracer_provider,
)
from persona_plugins.cli.evaluate import run_harness
from persona_plugins.persona import Persona, resolve_persona

if TYPE_CHECKING:
    from persona_plugins.evaluation.datasets import Question


def add_parser(sub: Any) -> None:
    from persona_plugins.evaluation.datasets import DATASETS

    audit = sub.add_parser(
        "audit",
        help="persona bias audit: accuracy, refusals, McNemar and stereotype agreement per persona",
    )
    audit.add_argument("--dataset", choices=sorted(DATASETS), help="a shared reasoning set")
    audit.add_argument("--questions", help="a JSON-lines file of {question, answer} objects")
    audit.add_argument("--limit", type=int, default=50, help="the first N questions (default 50)")
    audit.add_argument(
        "--personas",
        help="comma-separated persona names or files (default: every audit persona)",
    )
    audit.add_argument(
        "--baselines",
        help="comma-separated baseline personas (default: average_human,human)",
    )
    audit.add_argument(
        "--crows", type=int, default=20, help="CrowS-Pairs stereotypes per persona (0: skip)"
    )
    audit.add_argument("--seed", type=int, default=0, help="CrowS-Pairs sampling seed")
    audit.add_argument("--data-dir", help=DATA_DIR_HELP)
    audit.add_argument("--out", default="audit-results", help="output folder (default %(default)s)")
    audit.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_model_options(audit)
    add_trace_options(audit)
    audit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.audit import load_crows_pairs, run_audit
    from persona_plugins.evaluation.progress import Progress

    if bool(args.dataset) == bool(args.questions):
        raise UsageError("give either --dataset NAME or --questions FILE")
    needed = ([args.dataset] if args.dataset else []) + (["crows_pairs"] if args.crows else [])
    if needed:  # one error naming every missing file, before anything is loaded
        from persona_plugins.evaluation.data_sources import require as require_data

        require_data(needed, args.data_dir)
    questions, source = _questions(args)
    personas, n_baselines = _personas(args)
    crows = load_crows_pairs(args.data_dir, limit=args.crows, seed=args.seed) if args.crows else []
    provider = tracer_provider(args)
    model = _common.build_model(args)
    label = model_label(args)
    progress = Progress()
    try:
        summary = run_harness(
            run_audit(
                questions,
                model,
                personas,
                out_dir=Path(args.out),
                baselines=[p.name for p in personas[:n_baselines]],
                crows=crows,
                title=f"{source}, {len(questions)} questions, {label}",
                dataset=source,
                model_label=label,
                progress=progress,
            ),
            progress,
        )
    finally:
        shutdown(provider)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=2))
    else:
        print(summary["markdown"])
        chart = summary.get("chart") or "(no chart: pip install 'persona-plugins[audit]')"
        print(f"\nwritten to {args.out}/audit.{{jsonl,json,md}}; chart: {chart}")
    return 0


def _questions(args: argparse.Namespace) -> tuple[list[Question], str]:
    """The questions (``--dataset`` or ``--questions``) and the name the report gives them."""
    from persona_plugins.evaluation.audit import load_question_file
    from persona_plugins.evaluation.datasets import load_dataset

    if args.dataset:
        return load_dataset(args.dataset, args.data_dir, limit=args.limit), args.dataset
    return load_question_file(args.questions, limit=args.limit), Path(args.questions).name


def _personas(args: argparse.Namespace) -> tuple[list[Persona], int]:
    """The baselines then the audited personas, and how many baselines lead the list."""
    from persona_plugins.evaluation.audit import DEFAULT_BASELINES

    known = catalog()
    if args.personas in (None, "all"):
        names = [p.name for p in known.values() if p.metadata.get("kind") == "audit"]
    else:
        names = [n.strip() for n in args.personas.split(",") if n.strip()]
    baselines = [n.strip() for n in (args.baselines or ",".join(DEFAULT_BASELINES)).split(",")]
    baselines = [b for b in baselines if b]
    personas = [require(resolve_persona(n, known)) for n in [*baselines, *names]]
    return personas, len(baselines)
