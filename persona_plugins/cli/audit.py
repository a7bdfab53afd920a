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
    printable,
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
    batch = audit.add_mutually_exclusive_group()
    batch.add_argument(
        "--write-batch",
        metavar="FILE",
        help="write every request as OpenAI batch JSON lines (custom_id, method, url, body) for "
        "a batch engine (vLLM run-batch, a hosted batch API) instead of calling a model",
    )
    batch.add_argument(
        "--read-batch",
        metavar="RESULTS",
        help="score a batch engine's result file for the requests --write-batch wrote (same "
        "options) into the audit's files, calling no model",
    )
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
    if args.write_batch or args.read_batch:
        return _batch(args, questions, personas, n_baselines, crows, source)
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


def _batch(
    args: argparse.Namespace,
    questions: list[Question],
    personas: list[Persona],
    n_baselines: int,
    crows: list[Any],
    source: str,
) -> int:
    """``--write-batch FILE`` and ``--read-batch RESULTS``: the audit through a batch engine."""
    from persona_plugins.evaluation.audit_batch import read_audit_batch, write_audit_batch
    from persona_plugins.evaluation.progress import Progress, run_interruptible

    generation = {"max_tokens": args.max_tokens} if args.max_tokens else {}
    options: dict[str, Any] = {
        "baselines": [p.name for p in personas[:n_baselines]],
        "crows": crows,
        "dataset": source,
    }
    if args.write_batch:
        count = run_interruptible(
            write_audit_batch(
                questions,
                personas,
                path=Path(args.write_batch),
                model_name=args.model or "default",
                generation=generation,
                **options,
            )
        )
        print(
            f"wrote {count} requests to {printable(args.write_batch, one_line=True)} (OpenAI "
            "batch JSON lines); run them on a batch engine, then score its result file with the "
            "same options and --read-batch RESULTS"
        )
        return 0
    label = f"{args.model or 'default'}, batch results {Path(args.read_batch).name}"
    progress = Progress()
    try:
        summary = run_interruptible(
            read_audit_batch(
                questions,
                personas,
                results=Path(args.read_batch),
                out_dir=Path(args.out),
                generation=generation,
                progress=progress,
                title=f"{source}, {len(questions)} questions, {label}",
                model_label=label,
                **options,
            )
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(progress.interrupted_note()) from None
    chart = summary.get("chart") or "(no chart: pip install 'persona-plugins[audit]')"
    return print_summary(args, summary, "audit", f"; chart: {chart}")
