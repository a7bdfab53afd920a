"""``persona-plugins eval``: the Jekyll & Hyde and refinement harnesses on the shared data sets.

Ctrl-C stops a harness at once; the results saved so far stay, and the message says how to resume.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from persona_plugins.cli._common import add_harness_options, catalog, print_summary, run_harness
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
    add_harness_options(jh, out="eval-results")
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
    add_harness_options(rf, out="eval-results")
    rf.set_defaults(func=run_refine)


def run_jekyll_hyde(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.datasets import load_dataset
    from persona_plugins.evaluation.jekyll_hyde import run_jekyll_hyde_eval

    questions = load_dataset(args.dataset, args.data_dir, limit=args.limit)
    if args.persona != "generated":
        resolve_persona(args.persona, catalog())  # fail early on an unknown name
    harness = partial(
        run_jekyll_hyde_eval,
        questions,
        dataset=args.dataset,
        persona=args.persona,
        fallback_persona=args.fallback_persona,
        systems=args.systems.split(","),
    )
    summary = run_harness(args, harness)
    return print_summary(args, summary, f"jekyll_hyde_{args.dataset}")


def run_refine(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.refine import load_persona_questions, run_refine_eval

    items = load_persona_questions(args.data_dir, limit=args.limit)
    harness = partial(
        run_refine_eval, items, strategies=args.strategies.split(","), max_rounds=args.max_rounds
    )
    summary = run_harness(args, harness)
    return print_summary(args, summary, "refine")
