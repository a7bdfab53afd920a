"""The cost of tracing: PersonaChatCompletionClient with an SDK tracer provider (batch processor)
against the same client with tracing off, under ``AssistantAgent.run`` on an instant model.

Both variants run interleaved in rounds, as in ``bench_autogen_overhead.py`` (whose instant client
and timing loop this reuses). The traced variant exports through a ``BatchSpanProcessor`` to an
exporter that drops the spans, so the number is the cost of creating and recording them, not of
a network. Target: ratio <= 1.5.

Reproduce: .venv/bin/python benchmarks/bench_tracing_overhead.py [--rounds 20] [--runs 150]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from bench_autogen_overhead import (
    PERSONA,
    InstantChatCompletionClient,
    Variant,
    measure,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from results_md import machine_note, update_section

from persona_plugins.adapters.autogen import PersonaChatCompletionClient

HEADING = "Cost of tracing on the AutoGen wrapper"


class DroppingExporter(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a few rounds, print only")
    args, _ = parser.parse_known_args()
    rounds, runs = (4, 40) if args.quick else (args.rounds, args.runs)

    exporter = DroppingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    off_inner, on_inner = InstantChatCompletionClient(), InstantChatCompletionClient()
    variants = [
        Variant(
            "off",
            "tracing off (no SDK provider)",
            off_inner,
            PersonaChatCompletionClient(off_inner, persona=PERSONA),
        ),
        Variant(
            "on",
            "SDK provider + BatchSpanProcessor",
            on_inner,
            PersonaChatCompletionClient(on_inner, persona=PERSONA, tracer_provider=provider),
        ),
    ]
    asyncio.run(measure(variants, rounds, runs, args.warmup))
    provider.force_flush()
    off, on = variants
    ratio = statistics.median(on.samples) / statistics.median(off.samples)
    per_round = sorted(b / a for a, b in zip(off.round_medians, on.round_medians, strict=True))
    quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    spans_per_run = exporter.exported / max(1, on.runs)
    table = (
        f"{machine_note()}; {rounds} interleaved rounds x {runs} runs per variant, instant model, "
        f"persona {PERSONA!r}; the traced variant recorded {spans_per_run:.1f} spans per run.\n\n"
        "| variant | median per `AssistantAgent.run` | ratio | target |\n|---|---:|---:|---|\n"
        f"| {off.label} | {statistics.median(off.samples) * 1e6:.0f} µs | 1.00x | |\n"
        f"| {on.label} | {statistics.median(on.samples) * 1e6:.0f} µs | {ratio:.2f}x "
        f"(per round: {quartiles[0]:.2f}-{quartiles[-1]:.2f}) | <= 1.5x: "
        f"{'met' if ratio <= 1.5 else '**over target**'} |\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_tracing_overhead.py --rounds {rounds} "
        f"--runs {runs}`\n"
    )
    print(f"## {HEADING}\n\n{table}")
    if not args.quick:
        update_section(HEADING, table)
    provider.shutdown()


if __name__ == "__main__":
    main()
