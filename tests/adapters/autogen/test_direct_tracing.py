"""A persona-only call with nothing recording makes no span at all; once an SDK tracer provider
is set globally, even after the client was built, the next call has its turn and chat spans."""

from __future__ import annotations

import pytest
from autogen_core.models import UserMessage
from opentelemetry import trace
from opentelemetry.util._once import Once

from persona_plugins import semconv
from persona_plugins.adapter_kit import DIRECT
from persona_plugins.adapters.autogen import PersonaChatCompletionClient

from .doubles import RecordingClient

QUESTION = [UserMessage(content="What is two and two?", source="user")]


@pytest.fixture
def unset_global_provider(monkeypatch):
    """OpenTelemetry's global tracer provider as in a fresh process: not set yet (restored after
    the test, since it can be set only once)."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())


async def test_a_global_provider_set_after_the_client_was_built_traces_the_next_call(
    unset_global_provider, memory_tracing
):
    provider, exporter = memory_tracing
    client = PersonaChatCompletionClient(RecordingClient(), persona="chef")
    await client.create(QUESTION)
    assert exporter.get_finished_spans() == ()

    trace.set_tracer_provider(provider)
    result = await client.create(QUESTION)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    turn = spans.pop(semconv.SPAN_TURN)
    (chat,) = (span for name, span in spans.items() if name.startswith("chat "))
    prepare = spans[f"{semconv.SPAN_STAGE_PREFIX}prepare"]
    for child in (chat, prepare):
        assert child.parent is not None and child.parent.span_id == turn.context.span_id
    assert chat.attributes[DIRECT] is True
    assert chat.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert turn.attributes[semconv.PP_PERSONA_NAME] == "chef"
    assert client.model_calls == 2
