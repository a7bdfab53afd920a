"""``persona-plugins demo``: a team of persona agents answers a question, then a summary table.

The team itself (an AutoGen ``RoundRobinGroupChat`` or a Semantic Kernel
``GroupChatOrchestration``) is built by the adapter's ``_cli`` module; this module picks the
personas, prints each reply as it arrives and prints the one summary both teams share.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from persona_plugins.cli import _common
from persona_plugins.cli._common import (
    FrameworkCli,
    Member,
    TeamRun,
    UsageError,
    add_framework_option,
    add_model_options,
    add_trace_options,
    catalog,
    framework_cli,
    model_label,
    printable,
    require,
    shutdown,
    tracer_provider,
)
from persona_plugins.persona import resolve_persona

DEFAULT_DEMO_QUESTION = "What should I pack for a day at the beach?"
DEFAULT_DEMO_PERSONAS = ("pirate_captain", "children_tutor")

#: Width of the persona column in the demo summary.
DEMO_PERSONA_WIDTH = 44


def add_parser(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="two persona agents in an AutoGen team answer a question (embedded model)"
    )
    demo.add_argument("--question", default=DEFAULT_DEMO_QUESTION)
    demo.add_argument(
        "--personas",
        default=",".join(DEFAULT_DEMO_PERSONAS),
        help="comma-separated persona names or files (default: %(default)s)",
    )
    demo.add_argument("--rounds", type=int, default=1, help="replies per agent (default 1)")
    add_framework_option(
        demo,
        "an AutoGen RoundRobinGroupChat or a Semantic Kernel GroupChatOrchestration "
        "(default %(default)s)",
        default="autogen",
    )
    add_model_options(demo)
    add_trace_options(demo)
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    team = framework_cli(args.framework, "demo")
    members = team_members(args.personas)
    provider = tracer_provider(args)
    started = time.perf_counter()
    try:
        usage = asyncio.run(_run_team(team, args, members, provider))
    finally:
        shutdown(provider)
    elapsed = time.perf_counter() - started
    rows = [
        (name, persona.description, *counts)
        for (name, persona), counts in zip(members, usage, strict=True)
    ]
    label = model_label(args, runtime=True)
    print_team_summary(rows, f"{label} ({team.DEMO_NOTE})" if team.DEMO_NOTE else label, elapsed)
    return 0


def team_members(personas: str) -> list[Member]:
    """``--personas`` as team members: each persona with an agent name the frameworks accept."""
    names = [n.strip() for n in personas.split(",") if n.strip()]
    if len(names) < 2:
        raise UsageError("--personas needs at least two comma-separated persona names")
    known = catalog()
    resolved = [require(resolve_persona(name, known)) for name in names]
    return [(p.name if p.name.isidentifier() else f"agent_{i}", p) for i, p in enumerate(resolved)]


async def _run_team(
    team: FrameworkCli, args: argparse.Namespace, members: list[Member], provider: Any
) -> list[tuple[int, int, int]]:
    model = _common.build_model(args)
    print(f"Question: {printable(args.question)}\n")
    return await team.run_team(
        TeamRun(
            model,
            members,
            question=args.question,
            rounds=args.rounds,
            tracer_provider=provider,
            on_reply=print_reply,
        )
    )


def print_reply(agent: str, text: str) -> None:
    print(f"[{printable(agent, one_line=True)}] {printable(text)}\n", flush=True)


# -- the summary ---------------------------------------------------------------------------------


def fit(text: str, width: int) -> str:
    """``text`` on one line in at most ``width`` characters: whole, or cut after the last word that
    fits and ended with ``...`` (a single word longer than the room is cut inside)."""
    text = " ".join(printable(text, one_line=True).split())
    if len(text) <= width:
        return text
    room = max(width - 3, 1)
    # One character beyond the room shows whether the cut falls between two words.
    head = text[: room + 1].rsplit(" ", 1)[0] if " " in text[: room + 1] else text[:room]
    head = head.rstrip(" ,;:.-") or text[:room]
    return f"{head}..."


def print_team_summary(
    rows: Sequence[tuple[str, str, int, int, int]], model: str, elapsed: float
) -> None:
    """The demos' closing table: one ``(agent, persona description, calls, tokens in, tokens
    out)`` row per agent, then the model and the totals."""
    width = DEMO_PERSONA_WIDTH
    print("Summary")
    print(f"  {'agent':<20} {'persona':<{width}} {'calls':>5} {'tokens in':>9} {'tokens out':>10}")
    for agent, description, calls, tokens_in, tokens_out in rows:
        print(
            f"  {agent:<20} {fit(description, width):<{width}} {calls:>5} "
            f"{tokens_in:>9} {tokens_out:>10}"
        )
    print(f"  model: {model}")
    print(
        f"  total: {sum(r[2] for r in rows)} model calls, {sum(r[3] for r in rows)} tokens in, "
        f"{sum(r[4] for r in rows)} tokens out, {elapsed:.1f} s",
        flush=True,
    )
