"""``persona-plugins ask``: one question through the pipeline, or through an adapter
(``--framework``), printed as text with a one-line account on stderr, or as JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from persona_plugins.cli import _common
from persona_plugins.cli._common import (
    FrameworkCli,
    add_framework_option,
    add_model_options,
    add_trace_options,
    framework_cli,
    printable,
    printable_json,
    shutdown,
    tracer_provider,
)
from persona_plugins.config import PipelineConfig


def add_parser(sub: Any) -> None:
    ask = sub.add_parser("ask", help="answer one question through the pipeline")
    ask.add_argument("question")
    ask.add_argument("--persona", help="a catalog name or a .yaml/.json/.toml persona file")
    ask.add_argument("--persona-mode", choices=["static", "generated", "multi", "none"])
    ask.add_argument("--persona-template", choices=["describe", "adopt", "roleplay"])
    ask.add_argument("--ensemble", choices=["off", "jekyll_hyde"])
    ask.add_argument("--refine", choices=["off", "sequential", "parallel", "adaptive"])
    ask.add_argument("--guard", choices=["off", "monitor", "enforce"])
    ask.add_argument("--config", help="a TOML file with PipelineConfig fields")
    ask.add_argument("--json", action="store_true", help="print the whole TurnResult as JSON")
    add_framework_option(
        ask,
        "answer through an adapter: the AutoGen client wrapper, or PersonaPlugin's answer "
        "function on a Semantic Kernel kernel (default: the pipeline alone)",
    )
    add_model_options(ask)
    add_trace_options(ask)
    ask.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    base = PipelineConfig.from_toml(args.config) if args.config else None
    overrides: dict[str, Any] = {}
    for field in ("persona", "persona_mode", "persona_template", "ensemble", "refine", "guard"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return PipelineConfig.build(base, **overrides)


def run(args: argparse.Namespace) -> int:
    from persona_plugins.pipeline import PersonaPipeline

    config = config_from_args(args)
    provider = tracer_provider(args)
    try:
        if args.framework:
            adapter = framework_cli(args.framework, "ask")
            result = asyncio.run(_ask_through(adapter, args, config, provider))
        else:
            pipeline = PersonaPipeline(_common.build_model(args), config, tracer_provider=provider)
            result = pipeline.run_sync(args.question)
    finally:
        shutdown(provider)
    if args.json:
        print(printable_json(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    print(printable(result.text))
    persona = printable(result.persona.name, one_line=True) if result.persona else "none"
    print(
        f"\n[persona: {persona} ({result.persona_source}) | chosen: {result.chosen} | "
        f"model calls: {result.model_calls} | tokens: {result.usage.input_tokens} in, "
        f"{result.usage.output_tokens} out | {result.duration_s:.1f} s]",
        file=sys.stderr,
    )
    for error in result.errors:
        print(printable(f"[recovered: {error.stage}: {error.error}]"), file=sys.stderr)
    return 0


async def _ask_through(
    adapter: FrameworkCli, args: argparse.Namespace, config: PipelineConfig, provider: Any
) -> Any:
    """``ask --framework ...``: the AutoGen client wrapper's ``create``, or ``PersonaPlugin``'s
    ``answer`` function on a Semantic Kernel kernel."""
    return await adapter.ask(_common.build_model(args), args.question, config, provider)
