"""``persona-plugins eval``: the Jekyll & Hyde and refinement harnesses on the shared data sets.

Ctrl-C stops a harness at once; the results saved so far stay, and the message says how to resume.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from persona_plugins.cli import _common
from persona_plugins.cli._common import (
    DATA_DIR_HELP,
    add_model_options,
    add_trace_options,
    catalog,
    model_label,
    shutdown,
    tracer_provider,
)
from persona_plugins.persona import resolve_persona


def add_parser(sub: Any) -> None:
    from persona_plugins.evaluation.datasets import DATASETS

    evaluate = sub.add_parser("eval", help="evaluation harnesses on the shared data sets")
    esub = evaluate.add_subparsers(dest="eval_command", required=True, metavar="HARNESS")
    jh = esub.add_parser(
        "jekyll-hyde", help="persona-only, neutral-only, Jekyll & Hyde and SPP on a reasoning set"
    )
    jh.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    jh.add_argument("--limit", type=int, help="the first N questions")
    jh.add_argument(
        "--persona",
        default="generated",
        help="'generated' (written by the model per question, the default) or a persona name",
    )
    jh.add_argument(
        "--fallback-persona",
        default="math_teacher",
        help="used when a generated persona is unusable (default %(default)s)",
    )
    jh.add_argument(
        "--systems",
        default="persona,neutral,jekyll_hyde,spp",
        help="comma-separated subset of persona,neutral,jekyll_hyde,spp",
    )
    jh.add_argument("--data-dir", help=DATA_DIR_HELP)
    jh.add_argument("--out", default="eval-results", help="output folder (default %(default)s)")
    jh.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_model_options(jh)
    add_trace_options(jh)
    jh.set_defaults(func=run_jekyll_hyde)

    rf = esub.add_parser(
        "refine", help="no refinement, sequential, parallel and adaptive on PersonaGym questions"
    )
    rf.add_argument("--limit", type=int, default=20, help="persona questions (default 20)")
    rf.add_argument(
        "--strategies",
        default="none,sequential,parallel,adaptive",
        help="comma-separated subset of none,sequential,parallel,adaptive",
    )
    rf.add_argument("--max-rounds", type=int, default=1)
    rf.add_argument("--data-dir", help=DATA_DIR_HELP)
    rf.add_argument("--out", default="eval-results", help="output folder (default %(default)s)")
    rf.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_model_options(rf)
    add_trace_options(rf)
    rf.set_defaults(func=run_refine)


def run_harness(harness: Any, progress: Any) -> dict[str, Any]:
    """Run an evaluation coroutine; Ctrl-C cancels it at once (a model call still running in a
    worker thread is not waited for) and the KeyboardInterrupt says how much was saved."""
    from persona_plugins.evaluation.progress import run_interruptible

    try:
        summary: dict[str, Any] = run_interruptible(harness)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(progress.interrupted_note()) from None
    return summary


def print_summary(args: argparse.Namespace, summary: dict[str, Any], stem: str) -> int:
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=2))
    else:
        print(summary["markdown"])
        print(f"\nwritten to {args.out}/{stem}.{{jsonl,json,md}}")
    return 0


def run_jekyll_hyde(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.datasets import load_dataset
    from persona_plugins.evaluation.jekyll_hyde import run_jekyll_hyde_eval
    from persona_plugins.evaluation.progress import Progress

    questions = load_dataset(args.dataset, args.data_dir, limit=args.limit)
    if args.persona != "generated":
        resolve_persona(args.persona, catalog())  # fail early on an unknown name
    provider = tracer_provider(args)
    model = _common.build_model(args)
    label = model_label(args)
    progress = Progress()
    try:
        summary = run_harness(
            run_jekyll_hyde_eval(
                questions,
                model,
                out_dir=Path(args.out),
                dataset=args.dataset,
                persona=args.persona,
                fallback_persona=args.fallback_persona,
                systems=args.systems.split(","),
                model_label=label,
                progress=progress,
            ),
            progress,
        )
    finally:
        shutdown(provider)
    return print_summary(args, summary, f"jekyll_hyde_{args.dataset}")


def run_refine(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.progress import Progress
    from persona_plugins.evaluation.refine import load_persona_questions, run_refine_eval

    items = load_persona_questions(args.data_dir, limit=args.limit)
    provider = tracer_provider(args)
    model = _common.build_model(args)
    label = model_label(args)
    progress = Progress()
    try:
        summary = run_harness(
            run_refine_eval(
                items,
                model,
                out_dir=Path(args.out),
                strategies=args.strategies.split(","),
                max_rounds=args.max_rounds,
                model_label=label,
                progress=progress,
            ),
            progress,
        )
    finally:
        shutdown(provider)
    return print_summary(args, summary, "refine")
