"""The span tree of an agent with ``PersonaMiddleware``: the pipeline's spans nest under the
framework's ``invoke_agent`` span, and every model call has exactly one ``chat`` span (the
pipeline's for the calls it makes, the framework's for the agent's own call)."""

from __future__ import annotations

import pytest
from agent_framework import Agent, tool

from persona_plugins import semconv as sc
from persona_plugins.adapters.agent_framework import PersonaMiddleware

from .doubles import RecordingClient, function_call
from .test_middleware import jekyll_hyde

OURS = "persona_plugins"


@pytest.fixture
def traced(memory_tracing, monkeypatch):
    """The framework's spans and the pipeline's on one in-memory provider (the framework traces
    to the global provider, which a test must not set)."""
    import agent_framework.observability as observability

    provider, exporter = memory_tracing
    monkeypatch.setattr(
        observability, "get_tracer", lambda *args, **kwargs: provider.get_tracer("agent_framework")
    )
    return provider, exporter


@tool
def lookup(term: str) -> str:
    """Look a term up."""
    return f"{term}: a term."


def tree(exporter):
    spans = list(exporter.get_finished_spans())
    by_id = {s.context.span_id: s for s in spans}

    def parent(span):
        return by_id.get(span.parent.span_id) if span.parent else None

    def under(span, ancestor):
        up = parent(span)
        while up is not None:
            if up is ancestor:
                return True
            up = parent(up)
        return False

    return spans, parent, under


def scope(span) -> str:
    return span.instrumentation_scope.name


async def test_a_jekyll_hyde_turn_nests_under_invoke_agent_with_one_chat_span_per_call(traced):
    provider, exporter = traced
    client = RecordingClient(jekyll_hyde)
    middleware = PersonaMiddleware(
        persona="math_teacher", ensemble="jekyll_hyde", tracer_provider=provider
    )
    agent = Agent(client=client, name="teacher", middleware=[middleware])

    await agent.run("What is 6 * 7?")

    spans, parent, under = tree(exporter)
    (agent_span,) = [s for s in spans if s.name == "invoke_agent teacher"]
    (turn,) = [s for s in spans if s.name == sc.SPAN_TURN]
    assert parent(turn) is agent_span
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == len(client.calls) == 4, "every model call traced exactly once"
    assert all(scope(s).startswith(OURS) and under(s, turn) for s in chats)
    judges = [s for s in chats if s.attributes.get(sc.GEN_AI_AGENT_NAME) == "judge"]
    assert len(judges) == 2, "the pipeline's chat spans say which agent made the call"
    assert turn.attributes[sc.PP_MODEL_CALLS] == 4


async def test_a_tool_turn_keeps_the_frameworks_chat_spans_and_adds_the_persona_stage(traced):
    provider, exporter = traced
    client = RecordingClient([function_call("lookup", term="castle"), "A castle is a fort."])
    middleware = PersonaMiddleware(persona="historian", tracer_provider=provider)
    agent = Agent(client=client, name="historian", tools=[lookup], middleware=[middleware])

    await agent.run("What is a castle?")

    spans, _, under = tree(exporter)
    (agent_span,) = [s for s in spans if s.name == "invoke_agent historian"]
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == len(client.calls) == 2
    assert all(not scope(s).startswith(OURS) and under(s, agent_span) for s in chats)
    prepares = [s for s in spans if s.name == f"{sc.SPAN_STAGE_PREFIX}prepare"]
    assert len(prepares) == 2, "one persona stage per model call"
    assert all(under(s, agent_span) for s in prepares)
    assert {s.attributes[sc.PP_PERSONA_NAME] for s in prepares} == {"historian"}
    assert any(s.name == "execute_tool lookup" for s in spans)
