"""The cost of tracing: PersonaChatCompletionClient with an SDK tracer provider (batch processor)
against the same client with tracing off, under ``AssistantAgent.run`` on an instant model.

Both variants run interleaved in rounds, as in ``bench_autogen_overhead.py`` (whose instant client
and timing loop this reuses). The traced variant exports through a ``BatchSpanProcessor`` to an
exporter that drops the spans, so the number is the cost of creating and recording them, not of
a network. Target: ratio <= 1.5.

The SDK's own share is measured in the same rounds, in place: the raw instant client under
``AssistantAgent.run``, alone and with the spans one traced run makes (captured once, with their
names, nesting and attributes) made again straight on an identical SDK provider at each call, with
no persona-plugins code in between. The difference between those two is the floor any
instrumentation recording the same spans pays; the rest of the tracing cost is persona-plugins' own
tracing code.

Reproduce: .venv/bin/python benchmarks/bench_tracing_overhead.py [--rounds 20] [--runs 150]
(``--no-write`` prints only; ``--quick`` is a short run that prints only)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bench_autogen_overhead import (
    PERSONA,
    InstantChatCompletionClient,
    Variant,
    measure,
)
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
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


async def captured_spans() -> list[ReadableSpan]:
    """The spans of one traced run, captured in memory (outside any timing)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inner = InstantChatCompletionClient()
    variant = Variant(
        "capture",
        "capture",
        inner,
        PersonaChatCompletionClient(inner, persona=PERSONA, tracer_provider=provider),
    )
    await variant.agent.run(task="What is 7 * 12? (capture)")
    provider.shutdown()
    return list(exporter.get_finished_spans())


def sdk_replay(spans: Sequence[ReadableSpan], provider: TracerProvider) -> Callable[[], None]:
    """A function that makes ``spans`` again straight on ``provider``: the same names, nesting
    (each parent current while its children start) and attributes (all given at the start)."""
    tracer = provider.get_tracer("replay")
    children: dict[Any, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent, []).append(span)
    ids = {span.context.span_id for span in spans}
    roots = [s for parent, kids in children.items() if parent not in ids for s in kids]

    def make(span: ReadableSpan) -> None:
        started = tracer.start_span(span.name, kind=span.kind, attributes=dict(span.attributes))
        token = context.attach(trace.set_span_in_context(started))
        for child in children.get(span.context.span_id, []):
            make(child)
        context.detach(token)
        started.end()

    def replay() -> None:
        for root in roots:
            make(root)

    return replay


class SpansOnlyClient(InstantChatCompletionClient):
    """The instant client that also makes the captured spans straight on the SDK at each call."""

    def __init__(self, replay: Callable[[], None]) -> None:
        super().__init__()
        self.replay = replay

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        self.replay()
        return await super().create(*args, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--runs", type=int, default=150, help="runs per variant per round")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up runs per variant")
    parser.add_argument("--quick", action="store_true", help="a few rounds, print only")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write benchmarks/RESULTS.md (default: yes, unless --quick)",
    )
    args = parser.parse_args(argv)  # an unknown option is an error, not ignored
    rounds, runs = (4, 40) if args.quick else (args.rounds, args.runs)
    write = (not args.quick) if args.write is None else args.write
    load = os.getloadavg()[0]  # other work on the machine shows in every number

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
    spans = asyncio.run(captured_spans())
    floor_provider = TracerProvider()  # the same set-up, its own exporter: spans are not mixed
    floor_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    raw_inner, spans_inner = (
        InstantChatCompletionClient(),
        SpansOnlyClient(sdk_replay(spans, floor_provider)),
    )
    variants += [
        Variant("raw", "raw instant client", raw_inner, raw_inner),
        Variant("sdk", "raw instant client + the same spans on the SDK", spans_inner, spans_inner),
    ]
    asyncio.run(measure(variants, rounds, runs, args.warmup))
    provider.force_flush()
    floor_provider.shutdown()
    off, on, raw, sdk = variants
    ratio = statistics.median(on.samples) / statistics.median(off.samples)
    off_us, on_us = statistics.median(off.samples) * 1e6, statistics.median(on.samples) * 1e6
    floor_us = (statistics.median(sdk.samples) - statistics.median(raw.samples)) * 1e6
    attributes = sum(len(s.attributes or {}) for s in spans)
    per_round = sorted(b / a for a, b in zip(off.round_medians, on.round_medians, strict=True))
    quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    spans_per_run = exporter.exported / max(1, on.runs)
    table = (
        f"{machine_note()}, load average {load:.2f} at the start; {rounds} interleaved rounds x "
        f"{runs} runs per variant, instant model, "
        f"persona {PERSONA!r}; the traced variant recorded {spans_per_run:.1f} spans per run.\n\n"
        "| variant | median per `AssistantAgent.run` | ratio | target |\n|---|---:|---:|---|\n"
        f"| {off.label} | {statistics.median(off.samples) * 1e6:.0f} µs | 1.00x | |\n"
        f"| {on.label} | {statistics.median(on.samples) * 1e6:.0f} µs | {ratio:.2f}x "
        f"(per round: {quartiles[0]:.2f}-{quartiles[-1]:.2f}) | <= 1.5x: "
        f"{'met' if ratio <= 1.5 else '**over target**'} |\n\n"
        f"Where the {on_us - off_us:.0f} µs of tracing go: the SDK itself, making the same "
        f"{len(spans)} spans with their {attributes} attributes straight on an identical provider "
        f"at each call of the raw client (no persona-plugins code), adds {floor_us:.0f} µs per "
        f"run to the raw `AssistantAgent.run` in the same rounds "
        f"({statistics.median(raw.samples) * 1e6:.0f} µs to "
        f"{statistics.median(sdk.samples) * 1e6:.0f} µs); "
        f"persona-plugins' own tracing code is the remaining {on_us - off_us - floor_us:.0f} µs. "
        f"The floor alone puts the ratio at {(off_us + floor_us) / off_us:.2f}x for a tracing-off "
        f"run of {off_us:.0f} µs.\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_tracing_overhead.py --rounds {rounds} "
        f"--runs {runs}`\n"
    )
    print(f"## {HEADING}\n\n{table}")
    if write:
        print(f"\nwrote {update_section(HEADING, table)}")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
