"""``persona-plugins audit``: the persona bias audit (accuracy, refusals, McNemar significance with
Holm's correction for the many personas, and CrowS-Pairs stereotype agreement per persona against
baselines), with a chart."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_plugins.cli._common import (
    UsageError,
    add_harness_options,
    catalog,
    model_label,
    print_summary,
    require,
    run_harness,
)
from persona_plugins.persona import Persona, resolve_persona

if TYPE_CHECKING:
    from persona_plugins.evaluation.datasets import Question


def add_parser(sub: Any) -> None:
    from persona_plugins.evaluation.datasets import DATASETS

    audit = sub.add_parser(
        "audit",
        help="persona bias audit: accuracy, refusals, McNemar (raw and Holm-adjusted p) and "
        "stereotype agreement per persona",
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
    add_harness_options(audit, out="audit-results")
    audit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.audit import load_crows_pairs, run_audit

    if bool(args.dataset) == bool(args.questions):
        raise UsageError("give either --dataset NAME or --questions FILE")
    needed = ([args.dataset] if args.dataset else []) + (["crows_pairs"] if args.crows else [])
    if needed:  # one error naming every missing file, before anything is loaded
        from persona_plugins.evaluation.data_sources import require as require_data

        require_data(needed, args.data_dir)
    questions, source = _questions(args)
    personas, n_baselines = _personas(args)
    crows = load_crows_pairs(args.data_dir, limit=args.crows, seed=args.seed) if args.crows else []
    harness = partial(
        run_audit,
        questions,
        personas=personas,
        baselines=[p.name for p in personas[:n_baselines]],
        crows=crows,
        title=f"{source}, {len(questions)} questions, {model_label(args)}",
        dataset=source,
    )
    summary = run_harness(args, harness)
    chart = summary.get("chart") or "(no chart: pip install 'persona-plugins[audit]')"
    return print_summary(args, summary, "audit", f"; chart: {chart}")


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
