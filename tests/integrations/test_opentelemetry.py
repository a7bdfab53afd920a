"""Tracing set-up: ``configure_tracing`` builds a provider (memory, console, OTLP) that receives the
pipeline's spans, never touches the global provider unless asked, and never breaks a turn."""

from __future__ import annotations

import importlib
import io
import socket
import sys
from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from persona_plugins import (
    Completion,
    Message,
    MissingExtraError,
    ModelCallError,
    PersonaPipeline,
    semconv,
)
from persona_plugins.integrations.opentelemetry import (
    SpanTreeExporter,
    configure_tracing,
    format_span_tree,
)

MAX_TOKENS = 16


def pipeline_on(model, provider, **overrides) -> PersonaPipeline:
    return PersonaPipeline(
        model,
        persona="pirate_captain",
        model_settings={"max_tokens": MAX_TOKENS},
        tracer_provider=provider,
        **overrides,
    )


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[str]:
    ids = {s.context.span_id: s for s in spans}
    names = []
    while span.parent is not None and span.parent.span_id in ids:
        span = ids[span.parent.span_id]
        names.append(span.name)
    return names


class FailingModel:
    """A model whose every call fails (forces the error path)."""

    model_name = "failing"

    async def complete(self, messages, **settings) -> Completion:
        raise ConnectionError("the model host went away")


# -- memory ----------------------------------------------------------------------------------------


@pytest.mark.model
async def test_the_memory_exporter_receives_the_turn_with_its_stages_and_model_calls(
    embedded_model,
):
    provider = configure_tracing("memory")
    try:
        result = await pipeline_on(embedded_model, provider).run("Where is the treasure?")
        spans = provider.memory_exporter.get_finished_spans()
    finally:
        provider.shutdown()

    named = by_name(spans)
    [turn] = named[semconv.SPAN_TURN]
    [chat] = [s for s in spans if s.name.startswith("chat ")]
    assert turn.parent is None
    assert {s.context.trace_id for s in spans} == {turn.context.trace_id}
    assert ancestors(chat, spans)[-1] == semconv.SPAN_TURN
    assert "persona_plugins generate_candidates" in ancestors(chat, spans)
    assert {"persona_plugins select_persona", "persona_plugins inject_persona"} <= set(named)

    assert turn.attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_INVOKE_WORKFLOW
    assert turn.attributes[semconv.PP_PERSONA_NAME] == "pirate_captain"
    assert turn.attributes[semconv.PP_MODEL_CALLS] == 1
    assert turn.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.output_tokens
    assert chat.attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_CHAT
    assert chat.attributes[semconv.GEN_AI_REQUEST_MODEL] == embedded_model.model_name
    assert chat.attributes[semconv.GEN_AI_PROVIDER_NAME] == "llama.cpp"
    assert chat.attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == MAX_TOKENS
    assert 0 < chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] <= MAX_TOKENS
    assert turn.resource.attributes["service.name"] == "persona-plugins"


@pytest.mark.model
async def test_a_jekyll_hyde_turn_traces_each_candidate_as_its_own_agent(embedded_model):
    provider = configure_tracing("memory")
    try:
        await pipeline_on(
            embedded_model, provider, ensemble="jekyll_hyde", judge={"retries": 0}
        ).run("Hello!")
        spans = provider.memory_exporter.get_finished_spans()
    finally:
        provider.shutdown()

    agents = {
        s.attributes.get(semconv.GEN_AI_AGENT_NAME) for s in spans if s.name.startswith("chat ")
    }
    assert {"persona_candidate", "neutral_candidate"} <= agents


@pytest.mark.model
async def test_message_text_is_recorded_only_when_the_user_opts_in(embedded_model, monkeypatch):
    def captured(spans: Sequence[ReadableSpan]) -> str:
        return " ".join(str(v) for s in spans for v in (s.attributes or {}).values())

    monkeypatch.delenv(semconv.CAPTURE_CONTENT_ENV, raising=False)
    quiet = configure_tracing("memory")
    await pipeline_on(embedded_model, quiet).run("Where is the buried treasure?")
    monkeypatch.setenv(semconv.CAPTURE_CONTENT_ENV, "true")
    loud = configure_tracing("memory")
    await pipeline_on(embedded_model, loud).run("Where is the buried treasure?")

    assert "buried treasure" not in captured(quiet.memory_exporter.get_finished_spans())
    assert "buried treasure" in captured(loud.memory_exporter.get_finished_spans())
    quiet.shutdown()
    loud.shutdown()


def test_service_name_and_resource_attributes_are_set_on_the_provider():
    provider = configure_tracing(
        "memory",
        service_name="pirate-bot",
        resource_attributes={"openinference.project.name": "persona-tests"},
    )
    try:
        with provider.get_tracer("t").start_as_current_span("probe"):
            pass
        [span] = provider.memory_exporter.get_finished_spans()
    finally:
        provider.shutdown()

    assert span.resource.attributes["service.name"] == "pirate-bot"
    assert span.resource.attributes["openinference.project.name"] == "persona-tests"


# -- console ---------------------------------------------------------------------------------------


@pytest.mark.model
async def test_the_console_exporter_prints_a_readable_span_tree(embedded_model):
    stream = io.StringIO()
    provider = configure_tracing("console", stream=stream)
    try:
        await pipeline_on(embedded_model, provider).run("Where is the treasure?")
    finally:
        provider.shutdown()

    lines = stream.getvalue().splitlines()
    turn_line = next(i for i, line in enumerate(lines) if semconv.SPAN_TURN in line)
    stage_line = next(i for i, line in enumerate(lines) if "generate_candidates" in line)
    chat_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith("chat "))

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    assert indent(lines[turn_line]) == 0
    assert turn_line < stage_line < chat_line
    assert indent(lines[turn_line]) < indent(lines[stage_line]) < indent(lines[chat_line])
    assert "persona.name=pirate_captain" in lines[turn_line]
    assert "model_calls=1" in lines[turn_line]
    assert " ms" in lines[chat_line]
    assert "agent.name=persona_candidate" in lines[chat_line]


@pytest.mark.model
async def test_the_console_tree_prints_when_the_turn_ends_inside_an_application_span(
    embedded_model,
):
    from opentelemetry.sdk.trace import TracerProvider

    stream = io.StringIO()
    provider = configure_tracing("console", stream=stream)
    application = TracerProvider().get_tracer("web-app")
    try:
        with application.start_as_current_span("POST /chat"):
            await pipeline_on(embedded_model, provider).run("Where is the treasure?")
        printed = stream.getvalue()
    finally:
        provider.shutdown()

    assert semconv.SPAN_TURN in printed


async def test_a_failed_turn_is_marked_as_an_error_in_the_tree():
    stream = io.StringIO()
    provider = configure_tracing("console", stream=stream)
    try:
        with pytest.raises(ModelCallError):
            await pipeline_on(FailingModel(), provider).run("Where is the treasure?")
    finally:
        provider.shutdown()

    lines = stream.getvalue().splitlines()
    assert any(semconv.SPAN_TURN in line and "ERROR" in line for line in lines)
    assert any(
        line.lstrip().startswith("chat ") and "ERROR" in line and "ConnectionError" in line
        for line in lines
    ), "the failing model call is marked with its error type"


def test_format_span_tree_of_nothing_is_empty():
    assert format_span_tree([]) == ""


def test_spans_left_open_at_shutdown_are_still_printed():
    stream = io.StringIO()
    exporter = SpanTreeExporter(stream)
    provider = configure_tracing("memory")
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"), tracer.start_as_current_span("child"):
        pass
    child = next(s for s in provider.memory_exporter.get_finished_spans() if s.name == "child")

    assert exporter.export([child]) == SpanExportResult.SUCCESS
    assert stream.getvalue() == "", "a trace prints when its root span ends"
    exporter.shutdown()
    assert "child" in stream.getvalue()
    provider.shutdown()


# -- global state ----------------------------------------------------------------------------------


def test_configuring_tracing_leaves_the_global_provider_alone_by_default():
    before = trace.get_tracer_provider()

    for exporter in ("memory", "console", "otlp"):
        provider = configure_tracing(exporter, stream=io.StringIO())
        provider.shutdown()

    assert trace.get_tracer_provider() is before


# -- OTLP ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.model
async def test_otlp_export_to_a_collector_that_is_down_never_breaks_the_turn(
    embedded_model, monkeypatch
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    provider = configure_tracing("otlp", endpoint=f"http://127.0.0.1:{free_port()}/v1/traces")

    result = await pipeline_on(embedded_model, provider).run("Where is the treasure?")
    flushed = provider.force_flush(timeout_millis=5_000)
    provider.shutdown()

    assert result.text.strip()
    assert isinstance(flushed, bool)


# -- tracing never raises into the turn ----------------------------------------------------------


class ExplodingExporter(SpanExporter):
    def export(self, spans):
        raise RuntimeError("exporter is broken")

    def shutdown(self) -> None:
        pass


class ExplodingProcessor:
    """A span processor that raises wherever the SDK lets it."""

    def on_start(self, span, parent_context=None) -> None:
        raise RuntimeError("on_start is broken")

    def on_end(self, span) -> None:
        raise RuntimeError("on_end is broken")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.mark.model
@pytest.mark.parametrize("broken", ["exporter", "processor"])
async def test_a_broken_tracing_backend_never_breaks_the_turn(embedded_model, broken):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    if broken == "exporter":
        provider.add_span_processor(SimpleSpanProcessor(ExplodingExporter()))
    else:
        provider.add_span_processor(ExplodingProcessor())  # type: ignore[arg-type]

    result = await pipeline_on(embedded_model, provider).run("Where is the treasure?")

    assert result.text.strip()
    assert result.model_calls == 1


async def test_the_users_own_error_passes_through_tracing_unchanged(memory_tracing):
    provider, exporter = memory_tracing

    with pytest.raises(ModelCallError) as raised:
        await pipeline_on(FailingModel(), provider).run([Message.user("Hello?")])

    assert isinstance(raised.value.__cause__, ConnectionError)
    [turn] = [s for s in exporter.get_finished_spans() if s.name == semconv.SPAN_TURN]
    assert turn.status.status_code.name == "ERROR"
    assert turn.attributes[semconv.ERROR_TYPE] == "ModelCallError"


# -- set-up errors ---------------------------------------------------------------------------------


def test_an_unknown_exporter_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"console.*otlp.*memory"):
        configure_tracing("jaeger")  # type: ignore[arg-type]


def test_without_the_sdk_the_error_names_the_install_line(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("opentelemetry.sdk")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    for name in [m for m in sys.modules if m.startswith("persona_plugins.integrations.opentel")]:
        monkeypatch.delitem(sys.modules, name)

    with pytest.raises(MissingExtraError, match=r'pip install "persona-plugins\[otel\]"'):
        importlib.import_module("persona_plugins.integrations.opentelemetry")
