"""Exporter set-up for tracing persona-plugins runs (needs ``pip install "persona-plugins[otel]"``).

The library itself only uses ``opentelemetry-api``; nothing is recorded until an SDK provider is
installed. :func:`configure_tracing` builds one and returns it; it sets the global provider only
when asked (``set_global=True``), so library code never changes global state behind your back.

Example::

    from persona_plugins import PersonaPipeline
    from persona_plugins.integrations.opentelemetry import configure_tracing

    provider = configure_tracing("otlp", endpoint="http://127.0.0.1:6006/v1/traces")
    pipeline = PersonaPipeline(model, persona="historian", tracer_provider=provider)
"""

from persona_plugins.integrations.opentelemetry._setup import (
    SpanTreeExporter,
    SpanTreeProcessor,
    configure_metrics,
    configure_tracing,
    format_span_tree,
)

__all__ = [
    "SpanTreeExporter",
    "SpanTreeProcessor",
    "configure_metrics",
    "configure_tracing",
    "format_span_tree",
]
