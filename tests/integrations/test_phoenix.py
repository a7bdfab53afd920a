"""A real observability tool: a turn traced with ``configure_tracing("otlp")`` arrives in a real
Arize Phoenix server over OTLP/HTTP, span for span, with its parent links and GenAI attributes.

Phoenix runs from its own venv (``make .venv-phoenix/.installed``, a prerequisite of ``make
test``). Without it this test fails, telling you to build it, unless
``PERSONA_PLUGINS_SKIP_PHOENIX=1`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from persona_plugins import Completion, Message, PersonaPipeline, Usage, semconv
from persona_plugins.integrations.opentelemetry import configure_tracing
from persona_plugins.judging import JUDGE_SYSTEM_PROMPT
from tests.integrations.phoenix_server import (
    PHOENIX,
    SKIP_ENV,
    Span,
    not_installed_message,
    running_phoenix,
    wait_for_spans,
)

PERSONA_ANSWER = "Arr, the capital of France be Paris, matey."
NEUTRAL_ANSWER = "The capital of France is Paris."
STAGES = ("persona_plugins generate_candidates", "persona_plugins judge_candidates")


class InstantModel:
    """Answers at once: the exporter and the receiver are under test here, not the model.

    The persona and neutral answers differ, so the judge is asked (in both orders); it always
    picks the persona answer, so its two verdicts agree.
    """

    model_name = "instant-test-model"
    provider_name = "test-double"

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        system = messages[0].content if messages[0].role == "system" else ""
        if system.startswith(JUDGE_SYSTEM_PROMPT.partition("{")[0]):
            body = messages[-1].content
            first = body.index(PERSONA_ANSWER) < body.index(NEUTRAL_ANSWER)
            text = "Verdict: 1" if first else "Verdict: 2"
        elif system:
            text = PERSONA_ANSWER
        else:
            text = NEUTRAL_ANSWER
        return Completion(
            text=text,
            usage=Usage(input_tokens=len(messages) * 7, output_tokens=len(text.split())),
            finish_reason="stop",
            model=self.model_name,
        )


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory) -> Iterator[str]:
    """A real ``phoenix serve`` on loopback; yields its base URL."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1")
    if not PHOENIX.exists():
        pytest.fail(not_installed_message(), pytrace=False)
    with running_phoenix(tmp_path_factory.mktemp("phoenix")) as base:
        yield base


def hex_id(span_id: int) -> str:
    return format(span_id, "016x")


@pytest.mark.phoenix
def test_a_traced_turn_arrives_in_phoenix_with_its_stages_model_calls_and_attributes(phoenix):
    project = f"persona-plugins-test-{uuid.uuid4().hex[:12]}"
    provider = configure_tracing(
        "otlp",
        endpoint=f"{phoenix}/v1/traces",
        resource_attributes={"openinference.project.name": project},
        batch=False,
    )
    # A local copy of what was exported, to check that Phoenix received every span.
    local = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(local))
    try:
        pipeline = PersonaPipeline(
            InstantModel(),
            persona="pirate_captain",
            ensemble="jekyll_hyde",
            judge={"retries": 0},
            tracer_provider=provider,
        )
        result = pipeline.run_sync("What is the capital of France?")
        assert provider.force_flush()
    finally:
        provider.shutdown()
    assert result.text == PERSONA_ANSWER
    sent = {hex_id(s.context.span_id) for s in local.get_finished_spans()}
    assert len(sent) > 5

    spans = wait_for_spans(
        phoenix, project, lambda got: {s["context"]["span_id"] for s in got} >= sent
    )

    assert {s["context"]["span_id"] for s in spans} == sent
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    named: dict[str, list[Span]] = {}
    for span in spans:
        named.setdefault(span["name"], []).append(span)
    chat = f"chat {InstantModel.model_name}"
    assert {semconv.SPAN_TURN, *STAGES, chat} <= set(named)

    [turn] = named[semconv.SPAN_TURN]
    assert turn["parent_id"] is None
    assert turn["attributes"][semconv.GEN_AI_OPERATION_NAME] == semconv.OP_INVOKE_WORKFLOW
    turn_id = turn["context"]["span_id"]
    for stage in STAGES:
        [span] = named[stage]
        assert span["parent_id"] == turn_id, f"{stage} is not a child of the turn span"

    by_id = {s["context"]["span_id"]: s for s in spans}

    def stage_of(span: Span) -> str:
        while span["parent_id"] != turn_id:
            span = by_id[span["parent_id"]]
        return str(span["name"])

    calls = named[chat]
    assert len(calls) == result.model_calls == 4
    for call in calls:
        attributes = call["attributes"]
        assert attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_CHAT
        assert attributes[semconv.GEN_AI_REQUEST_MODEL] == InstantModel.model_name
        assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    agents = sorted((c["attributes"][semconv.GEN_AI_AGENT_NAME], stage_of(c)) for c in calls)
    assert agents == [
        ("judge", "persona_plugins judge_candidates"),
        ("judge", "persona_plugins judge_candidates"),
        ("neutral_candidate", "persona_plugins generate_candidates"),
        ("persona_candidate", "persona_plugins generate_candidates"),
    ]
    assert sum(c["attributes"][semconv.GEN_AI_USAGE_OUTPUT_TOKENS] for c in calls) == (
        result.usage.output_tokens
    )
