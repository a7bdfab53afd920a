from __future__ import annotations

import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import IO, Any, Literal

from persona_plugins.errors import MissingExtraError

try:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise MissingExtraError(
        "persona_plugins.integrations.opentelemetry", "otel", missing=exc.name
    ) from exc

ExporterName = Literal["console", "otlp", "memory"]
_SHOWN_ATTRIBUTES = (
    "gen_ai.agent.name",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "persona_plugins.persona.name",
    "persona_plugins.chosen",
    "persona_plugins.model_calls",
    "gen_ai.evaluation.score.label",
    "error.type",
    "persona_plugins.plugin",
)


def format_span_tree(spans: Sequence[ReadableSpan]) -> str:
    """Render finished spans as an indented tree with durations and key attributes."""
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    ids = {s.context.span_id for s in spans if s.context is not None}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children[parent if parent in ids else None].append(span)
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        attrs = span.attributes or {}
        shown = ", ".join(
            f"{k.split('.', 1)[-1]}={attrs[k]}" for k in _SHOWN_ATTRIBUTES if k in attrs
        )
        status = (
            " ERROR" if span.status is not None and span.status.status_code.name == "ERROR" else ""
        )
        lines.append(
            f"{'  ' * depth}{span.name}  {duration_ms:.0f} ms{status}"
            + (f"  [{shown}]" if shown else "")
        )
        for child in sorted(
            children.get(span.context.span_id if span.context else None, []),
            key=lambda s: s.start_time or 0,
        ):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s.start_time or 0):
        walk(root, 0)
    return "\n".join(lines)


class SpanTreeExporter(SpanExporter):
    """Prints each finished trace as a readable tree when its root span ends.

    On its own it treats a span without a parent as the root. Under :class:`SpanTreeProcessor`
    (what ``configure_tracing("console")`` installs) it also knows which spans started on this
    provider, so a turn running inside an application's own span (a web request, or an agent
    span recorded by another provider) prints as soon as its local root ends.
    """

    def __init__(self, stream: IO[str] | None = None):
        self._stream = stream
        self._pending: dict[int, list[ReadableSpan]] = defaultdict(list)
        self._started: set[int] | None = None
        self._lock = threading.Lock()

    def track_start(self, span_id: int) -> None:
        with self._lock:
            if self._started is None:
                self._started = set()
            self._started.add(span_id)

    def _is_local_root(self, span: ReadableSpan) -> bool:
        if span.parent is None:
            return True
        return self._started is not None and span.parent.span_id not in self._started

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            for span in spans:
                if span.context is None:
                    continue
                with self._lock:
                    trace_id = span.context.trace_id
                    self._pending[trace_id].append(span)
                    if not self._is_local_root(span):
                        continue
                    tree = _descendants(self._pending.pop(trace_id), span.context.span_id)
                    rest = [s for s in self._pending.get(trace_id, []) if s not in tree]
                    if rest:
                        self._pending[trace_id] = rest
                    if self._started is not None:
                        self._started.difference_update(
                            s.context.span_id for s in tree if s.context is not None
                        )
                stream = self._stream or sys.stderr
                stream.write(format_span_tree(tree) + "\n")
                stream.flush()
        except Exception:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            leftovers = [s for spans in self._pending.values() for s in spans]
            self._pending.clear()
        if leftovers:
            (self._stream or sys.stderr).write(format_span_tree(leftovers) + "\n")


def _descendants(spans: list[ReadableSpan], root_id: int) -> list[ReadableSpan]:
    """The spans under ``root_id`` (itself included), in their original order."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    keep: list[ReadableSpan] = []
    for span in spans:
        current: ReadableSpan | None = span
        while current is not None and current.context is not None:
            if current.context.span_id == root_id:
                keep.append(span)
                break
            parent = current.parent.span_id if current.parent is not None else None
            current = by_id.get(parent) if parent is not None else None
    return keep


class SpanTreeProcessor(SimpleSpanProcessor):
    """Feeds a :class:`SpanTreeExporter` and tells it which spans started here."""

    def __init__(self, exporter: SpanTreeExporter):
        super().__init__(exporter)
        self._tree = exporter

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.context is not None:
            self._tree.track_start(span.context.span_id)
        super().on_start(span, parent_context)


def configure_tracing(
    exporter: ExporterName = "console",
    *,
    endpoint: str | None = None,
    headers: dict[str, str] | None = None,
    service_name: str = "persona-plugins",
    set_global: bool = False,
    stream: IO[str] | None = None,
    batch: bool | None = None,
    resource_attributes: dict[str, Any] | None = None,
) -> TracerProvider:
    """Create an SDK tracer provider exporting persona-plugins spans.

    Args:
        exporter: ``console`` (a readable span tree on stderr), ``otlp`` (OTLP over HTTP to
            Jaeger, Phoenix, Langfuse or a collector) or ``memory`` (for tests; the exporter is
            available as ``provider.memory_exporter``).
        endpoint: the OTLP/HTTP traces URL (default: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
            ``http://localhost:4318/v1/traces``).
        headers: extra OTLP headers (an API key for Langfuse, for example).
        service_name: the ``service.name`` resource attribute.
        set_global: also install the provider as the global one (off by default).
        stream: where the console exporter writes (default stderr).
        batch: use a batch processor (default: yes for OTLP, no otherwise).
        resource_attributes: more resource attributes (``openinference.project.name`` for Phoenix).

    Returns:
        The provider; pass it as ``tracer_provider=`` and call ``provider.shutdown()`` at exit.
    """
    resource = Resource.create({"service.name": service_name, **(resource_attributes or {})})
    provider = TracerProvider(resource=resource)
    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = SpanTreeExporter(stream)
    elif exporter == "memory":
        span_exporter = InMemorySpanExporter()
        provider.memory_exporter = span_exporter  # type: ignore[attr-defined]
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingExtraError("OTLP export", "otel", missing=exc.name) from exc
        span_exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers)
    else:
        raise ValueError(f"unknown exporter {exporter!r}; use 'console', 'otlp' or 'memory'")
    use_batch = (exporter == "otlp") if batch is None else batch
    processor: SpanProcessor
    if isinstance(span_exporter, SpanTreeExporter):
        processor = SpanTreeProcessor(span_exporter)
    elif use_batch:
        processor = BatchSpanProcessor(span_exporter)
    else:
        processor = SimpleSpanProcessor(span_exporter)
    provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def configure_metrics(
    exporter: ExporterName = "console",
    *,
    endpoint: str | None = None,
    headers: dict[str, str] | None = None,
    service_name: str = "persona-plugins",
    set_global: bool = False,
    interval_s: float = 30.0,
    stream: IO[str] | None = None,
) -> Any:
    """Create an SDK meter provider for persona-plugins metrics (the counterpart of
    :func:`configure_tracing`).

    Args:
        exporter: ``console`` (JSON lines on stderr every ``interval_s``), ``otlp`` (OTLP over
            HTTP; default endpoint ``http://localhost:4318/v1/metrics``) or ``memory`` (for
            tests: read with ``provider.memory_reader.get_metrics_data()``).
        set_global: also install it as the global meter provider (off by default).

    Returns:
        The provider; pass it as ``meter_provider=`` and call ``provider.shutdown()`` at exit.
    """
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        InMemoryMetricReader,
        MetricReader,
        PeriodicExportingMetricReader,
    )

    resource = Resource.create({"service.name": service_name})
    reader: MetricReader
    if exporter == "memory":
        reader = InMemoryMetricReader()
    elif exporter == "console":
        reader = PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=stream or sys.stderr),
            export_interval_millis=interval_s * 1000,
        )
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        except ImportError as exc:
            raise MissingExtraError("OTLP metrics export", "otel", missing=exc.name) from exc
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=endpoint, headers=headers),
            export_interval_millis=interval_s * 1000,
        )
    else:
        raise ValueError(f"unknown exporter {exporter!r}; use 'console', 'otlp' or 'memory'")
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    if exporter == "memory":
        provider.memory_reader = reader  # type: ignore[attr-defined]
    if set_global:
        metrics.set_meter_provider(provider)
    return provider
