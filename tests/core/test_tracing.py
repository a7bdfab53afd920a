"""OpenTelemetry: one span per turn and stage, chat spans nested, opt-in content, never raising."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import StatusCode

from persona_plugins import (
    Finding,
    GuardrailViolation,
    Judgement,
    ModelCallError,
    PersonaPipeline,
    RefinementPlan,
    Resolution,
    hookimpl,
)
from persona_plugins import semconv as sc
from tests.core.doubles import ScriptedModel, ScriptedRefiner, by_prompt, registered

QUESTION = "What is 2 + 2? (my secret: 7Q-private)"
SECRET = "7Q-private"
TURN = "invoke_workflow persona_pipeline"
CONTENT_KEYS = (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS)


class Boom(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_content_capture_unless_asked(monkeypatch):
    monkeypatch.delenv(sc.CAPTURE_CONTENT_ENV, raising=False)


def finished(exporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return matching[0]


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def pipeline_on(provider, pm, model=None, **config) -> PersonaPipeline:
    return PersonaPipeline(
        model or ScriptedModel("Four."), plugin_manager=pm, tracer_provider=provider, **config
    )


# -- span structure ------------------------------------------------------------------------------


async def test_a_turn_is_one_invoke_workflow_span(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    result = await pipeline_on(provider, bare_manager, persona="math_teacher").run(QUESTION)
    turn = one(finished(exporter), TURN)
    assert turn.parent is None
    assert turn.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert turn.attributes[sc.GEN_AI_REQUEST_MODEL] == "scripted"
    assert turn.attributes[sc.GEN_AI_AGENT_NAME] == "math_teacher"
    assert turn.attributes[sc.PP_PERSONA_NAME] == "math_teacher"
    assert turn.attributes[sc.PP_MODEL_CALLS] == result.model_calls == 1
    assert turn.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.input_tokens
    assert turn.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.output_tokens
    assert turn.attributes[sc.PP_ENSEMBLE] == "off"
    assert turn.status.status_code is not StatusCode.ERROR


async def test_each_stage_is_a_child_span_of_the_turn_in_order(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    await pipeline_on(provider, bare_manager, persona="math_teacher").run(QUESTION)
    spans = finished(exporter)
    turn = one(spans, TURN)
    stages = sorted(children(spans, turn), key=lambda s: s.start_time)
    assert [s.name for s in stages] == [
        "persona_plugins select_persona",
        "persona_plugins inject_persona",
        "persona_plugins generate_candidates",
        "persona_plugins on_turn_complete",
    ]
    for stage in stages:
        assert stage.context.trace_id == turn.context.trace_id
        assert stage.attributes[sc.PP_STAGE] == stage.name.removeprefix("persona_plugins ")
    select = one(spans, "persona_plugins select_persona")
    assert select.attributes[sc.PP_PERSONA_NAME] == "math_teacher"
    assert select.attributes[sc.PP_PERSONA_SOURCE] == "config"


async def test_model_calls_are_chat_spans_nested_in_the_candidate_stage(
    memory_tracing, bare_manager
):
    provider, exporter = memory_tracing
    await pipeline_on(provider, bare_manager, persona="math_teacher").run(QUESTION, max_tokens=32)
    spans = finished(exporter)
    chat = one(spans, "chat scripted")
    assert chat.parent.span_id == one(spans, "persona_plugins generate_candidates").context.span_id
    expected = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "scripted",
        sc.GEN_AI_PROVIDER_NAME: "test-double",
        sc.GEN_AI_AGENT_NAME: "persona_candidate",
        sc.GEN_AI_REQUEST_MAX_TOKENS: 32,
        sc.GEN_AI_RESPONSE_MODEL: "scripted-1",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
    }
    assert {key: chat.attributes.get(key) for key in expected} == expected
    assert tuple(chat.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


async def test_each_candidate_is_its_own_agent_in_traces(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    await pipeline_on(
        provider, bare_manager, model, persona="pirate_captain", ensemble="jekyll_hyde"
    ).run(QUESTION)
    chats = [s for s in finished(exporter) if s.name == "chat scripted"]
    assert sorted(s.attributes[sc.GEN_AI_AGENT_NAME] for s in chats) == [
        "neutral_candidate",
        "persona_candidate",
    ]
    assert one(finished(exporter), TURN).attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 20


async def test_each_reviewer_is_its_own_agent_in_traces(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    checker = ScriptedRefiner("checker", lambda d: None, model_prompt="Is this right?")

    class Refining:
        @hookimpl
        def register_refiners(self, register):
            register(checker)

        @hookimpl
        def plan_refinement(self):
            return RefinementPlan(refiners=["checker"])

    with registered(bare_manager, Refining()):
        await pipeline_on(provider, bare_manager, refine="sequential", refiners=["checker"]).run(
            QUESTION
        )
    spans = finished(exporter)
    refine = one(spans, "persona_plugins refine")
    # each review is an agent invocation of its own, with the model call nested inside it
    [agent] = [s for s in children(spans, refine) if s.name == "invoke_agent checker_reviewer"]
    assert agent.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert agent.attributes[sc.GEN_AI_AGENT_NAME] == "checker_reviewer"
    [review_chat] = [s for s in children(spans, agent) if s.name == "chat scripted"]
    assert review_chat.attributes[sc.GEN_AI_AGENT_NAME] == "checker_reviewer"


async def test_the_judge_decision_is_recorded_as_an_evaluation(memory_tracing, bare_manager):
    provider, exporter = memory_tracing

    class PickNeutral:
        @hookimpl
        def judge_candidates(self):
            return Judgement(chosen="neutral", consistent=True, reason="plainer")

    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    with registered(bare_manager, PickNeutral()):
        await pipeline_on(
            provider, bare_manager, model, persona="pirate_captain", ensemble="jekyll_hyde"
        ).run(QUESTION)
    judge = one(finished(exporter), "persona_plugins judge_candidates")
    assert sc.GEN_AI_EVALUATION_NAME in judge.attributes
    assert judge.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] == "neutral"
    # the reason may quote an answer: with content capture off, only what was decided
    assert judge.attributes[sc.GEN_AI_EVALUATION_EXPLANATION] == (
        "chosen=neutral; consistent=True; fallback=False; calls=0"
    )
    assert one(finished(exporter), TURN).attributes[sc.PP_CHOSEN] == "neutral"


async def test_guard_findings_are_recorded_as_evaluation_events(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    finding = Finding(detector="abstention", message="refused as a persona", score=0.8)

    class Detector:
        @hookimpl
        def check_response(self):
            return [finding]

    with registered(bare_manager, Detector()):
        await pipeline_on(provider, bare_manager, guard="monitor").run(QUESTION)
    check = one(finished(exporter), "persona_plugins check_response")
    [event] = [e for e in check.events if e.name == sc.GEN_AI_EVALUATION_RESULT_EVENT]
    assert event.attributes[sc.GEN_AI_EVALUATION_NAME] == "abstention"
    assert event.attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] == 0.8
    assert check.attributes[sc.PP_FINDINGS_COUNT] == 1
    assert one(finished(exporter), TURN).attributes[sc.PP_FINDINGS_COUNT] == 1


async def test_prepare_is_traced_as_its_own_span(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    await pipeline_on(provider, bare_manager, persona="math_teacher").prepare(QUESTION)
    spans = finished(exporter)
    prepare = one(spans, "persona_plugins prepare")
    assert prepare.attributes[sc.PP_PERSONA_NAME] == "math_teacher"
    assert {s.name for s in children(spans, prepare)} == {
        "persona_plugins select_persona",
        "persona_plugins inject_persona",
    }


async def test_the_library_never_sets_the_global_tracer_provider(memory_tracing, bare_manager):
    provider, _ = memory_tracing
    before = trace.get_tracer_provider()
    await pipeline_on(provider, bare_manager).run(QUESTION)
    assert trace.get_tracer_provider() is before
    assert trace.get_tracer_provider() is not provider


async def test_without_an_sdk_provider_a_turn_runs_untraced(bare_manager):
    result = await PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager).run(QUESTION)
    assert result.text == "4"


# -- content capture -----------------------------------------------------------------------------


def all_attribute_text(spans: Sequence[ReadableSpan]) -> str:
    parts: list[str] = []
    for span in spans:
        parts.extend(str(v) for v in (span.attributes or {}).values())
        for event in span.events:
            parts.extend(str(v) for v in (event.attributes or {}).values())
    return "\n".join(parts)


async def test_message_and_persona_text_are_not_recorded_by_default(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    await pipeline_on(
        provider, bare_manager, model, persona="pirate_captain", ensemble="jekyll_hyde"
    ).run(QUESTION)
    spans = finished(exporter)
    for span in spans:
        for key in CONTENT_KEYS:
            assert key not in span.attributes, f"{span.name} recorded {key}"
    text = all_attribute_text(spans)
    assert SECRET not in text
    assert "Four, matey." not in text
    assert "pirate captain who sails" not in text


@pytest.mark.parametrize("value", ["true", "True", "1"])
async def test_content_is_recorded_when_the_user_opts_in(
    memory_tracing, bare_manager, monkeypatch, value
):
    monkeypatch.setenv(sc.CAPTURE_CONTENT_ENV, value)
    provider, exporter = memory_tracing
    pipeline = pipeline_on(provider, bare_manager, persona="pirate_captain")
    result = await pipeline.run(QUESTION)
    spans = finished(exporter)

    turn = one(spans, TURN)

    # the GenAI conventions' shape, which Phoenix and Langfuse read into their panels
    def text(content):
        return [{"type": "text", "content": content}]

    assert json.loads(turn.attributes[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": text(QUESTION)}
    ]
    assert json.loads(turn.attributes[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": text("Four.")}
    ]
    inject = one(spans, "persona_plugins inject_persona")
    assert json.loads(inject.attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == text(
        result.system_prompt
    )
    chat = one(spans, "chat scripted")
    sent = json.loads(chat.attributes[sc.GEN_AI_INPUT_MESSAGES])
    assert sent[0] == {"role": "system", "parts": text(result.system_prompt)}
    assert sent[-1] == {"role": "user", "parts": text(QUESTION)}


def everything_recorded(spans: Sequence[ReadableSpan]) -> str:
    """Attributes, event attributes and status descriptions of every span, as one text."""
    parts = [all_attribute_text(spans)]
    parts.extend(span.status.description or "" for span in spans)
    return "\n".join(parts)


class SecretReviewer:
    """A reviewer whose feedback quotes the user's secret (reviewers quote what they review)."""

    name, description = "secretive", "quotes the draft in its feedback"

    async def review(self, messages, draft, persona, model):
        from persona_plugins import Review

        return Review(refiner=self.name, needs_change=False, feedback=f"fine; it said {SECRET}")


class RefinerPlugin:
    @hookimpl
    def register_refiners(self, register):
        register(SecretReviewer())


async def run_with_quoting_explanations(provider, plugin_manager) -> None:
    """A turn whose findings, review and failed model call all quote content."""

    def reply(messages):
        if messages[0].role == "system" and "grader" not in messages[0].content:
            return Boom(f"the prompt was {SECRET}")  # the persona candidate's call fails
        return "As a pirate captain, I can't help with sums; women are bad at math anyway."

    with registered(plugin_manager, RefinerPlugin()):
        pipeline = pipeline_on(
            provider,
            plugin_manager,
            ScriptedModel(default=reply),
            persona="pirate_captain",
            ensemble="jekyll_hyde",
            refine="sequential",
            refiners=["secretive"],
            guard="monitor",
        )
        result = await pipeline.run(QUESTION)
    assert result.findings, "the detectors should have found something to explain"


async def test_explanations_and_exception_messages_carry_no_content_by_default(
    memory_tracing, plugin_manager
):
    provider, exporter = memory_tracing
    await run_with_quoting_explanations(provider, plugin_manager)
    spans = finished(exporter)
    recorded = everything_recorded(spans)
    assert SECRET not in recorded  # neither the review's feedback nor the model's exception
    assert "pirate captain" not in recorded.lower()  # findings quote the persona
    explanations = [
        (event.attributes or {}).get(sc.GEN_AI_EVALUATION_EXPLANATION)
        for span in spans
        for event in span.events
    ]
    assert any(e and e.startswith("detector=") for e in explanations)
    errors = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert errors and all(s.status.description == "Boom" for s in errors)
    assert all(
        set(event.attributes or {}) == {"exception.type"}
        for span in errors
        for event in span.events
        if event.name == "exception"
    )


async def test_the_judges_reason_does_not_quote_an_agreed_answer_by_default(
    memory_tracing, plugin_manager
):
    provider, exporter = memory_tracing
    model = ScriptedModel(default=f"Final answer: the code is {SECRET}")
    pipeline = pipeline_on(
        provider, plugin_manager, model, persona="math_teacher", ensemble="jekyll_hyde"
    )
    result = await pipeline.run("What is the code word?")
    assert "7qprivate" in result.judgement.reason  # the result keeps it; the span does not
    recorded = everything_recorded(finished(exporter))
    assert SECRET not in recorded and "7qprivate" not in recorded
    assert "chosen=persona; consistent=True" in recorded


async def test_explanations_and_exception_messages_are_recorded_on_opt_in(
    memory_tracing, plugin_manager, monkeypatch
):
    monkeypatch.setenv(sc.CAPTURE_CONTENT_ENV, "true")
    provider, exporter = memory_tracing
    await run_with_quoting_explanations(provider, plugin_manager)
    recorded = everything_recorded(finished(exporter))
    assert f"fine; it said {SECRET}" in recorded
    assert f"the prompt was {SECRET}" in recorded


# -- tracing never breaks a turn -----------------------------------------------------------------


class RaisingExporter(SpanExporter):
    def __init__(self):
        self.attempts = 0

    def export(self, spans):
        self.attempts += 1
        raise OSError("collector unreachable")

    def shutdown(self):
        pass


class RaisingProcessor(SpanProcessor):
    def __init__(self, *, on_start: bool, on_end: bool):
        self.fail_start, self.fail_end = on_start, on_end

    def on_start(self, span, parent_context=None):
        if self.fail_start:
            raise RuntimeError("processor broke on start")

    def on_end(self, span):
        if self.fail_end:
            raise RuntimeError("processor broke on end")


async def test_a_span_exporter_that_raises_never_breaks_a_turn(bare_manager):
    exporter = RaisingExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    result = await pipeline_on(provider, bare_manager, persona="math_teacher").run(QUESTION)
    assert result.text == "Four."
    assert exporter.attempts > 0


@pytest.mark.parametrize(("on_start", "on_end"), [(True, False), (False, True), (True, True)])
async def test_a_span_processor_that_raises_never_breaks_a_turn(bare_manager, on_start, on_end):
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(RaisingProcessor(on_start=on_start, on_end=on_end))
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    result = await pipeline_on(
        provider, bare_manager, model, persona="pirate_captain", ensemble="jekyll_hyde"
    ).run(QUESTION)
    assert result.text == "Four, matey."
    assert result.model_calls == 2
    assert result.errors == []


async def test_a_tracer_provider_that_raises_never_breaks_a_turn(bare_manager):
    class BrokenProvider:
        def get_tracer(self, *args, **kwargs):
            raise RuntimeError("no tracer for you")

    pipeline = pipeline_on(BrokenProvider(), bare_manager)
    assert (await pipeline.run(QUESTION)).text == "Four."


async def test_the_users_own_exception_passes_through_tracing_unchanged(
    memory_tracing, bare_manager
):
    provider, _ = memory_tracing
    cause = ConnectionError("model server down")
    pipeline = pipeline_on(provider, bare_manager, ScriptedModel(default=cause))
    with pytest.raises(ModelCallError) as info:
        await pipeline.run(QUESTION)
    assert info.value.__cause__ is cause


# -- errors on spans -----------------------------------------------------------------------------


async def test_a_failed_model_call_marks_its_chat_span_and_the_turn_as_errors(
    memory_tracing, bare_manager
):
    provider, exporter = memory_tracing
    pipeline = pipeline_on(provider, bare_manager, ScriptedModel(default=ConnectionError("down")))
    with pytest.raises(ModelCallError):
        await pipeline.run(QUESTION)
    spans = finished(exporter)
    chat = one(spans, "chat scripted")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes[sc.ERROR_TYPE] == "ConnectionError"
    assert any(e.name == "exception" for e in chat.events)
    turn = one(spans, TURN)
    assert turn.status.status_code is StatusCode.ERROR
    assert turn.attributes[sc.ERROR_TYPE] == "ModelCallError"


async def test_a_failed_candidate_marks_only_its_own_chat_span(memory_tracing, bare_manager):
    provider, exporter = memory_tracing
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral=Boom("down")))
    await pipeline_on(
        provider, bare_manager, model, persona="pirate_captain", ensemble="jekyll_hyde"
    ).run(QUESTION)
    spans = finished(exporter)
    status = {
        s.attributes[sc.GEN_AI_AGENT_NAME]: s.status.status_code
        for s in spans
        if s.name == "chat scripted"
    }
    assert status["neutral_candidate"] is StatusCode.ERROR
    assert status["persona_candidate"] is not StatusCode.ERROR
    assert one(spans, TURN).status.status_code is not StatusCode.ERROR


async def test_a_plugin_error_marks_its_stage_span_not_the_turn(memory_tracing, bare_manager):
    provider, exporter = memory_tracing

    class Broken:
        @hookimpl
        def check_response(self):
            raise Boom("detector crashed")

    with registered(bare_manager, Broken()):
        result = await pipeline_on(provider, bare_manager, guard="monitor").run(QUESTION)
    spans = finished(exporter)
    stage = one(spans, "persona_plugins check_response")
    assert stage.status.status_code is StatusCode.ERROR
    assert stage.attributes[sc.ERROR_TYPE] == "Boom"
    [event] = [e for e in stage.events if e.name == sc.PP_STAGE_ERROR_EVENT]
    assert event.attributes[sc.ERROR_TYPE] == "Boom"
    assert one(spans, TURN).status.status_code is not StatusCode.ERROR
    assert result.text == "Four."


async def test_a_blocked_response_marks_the_turn_with_the_violation(memory_tracing, bare_manager):
    provider, exporter = memory_tracing

    class Blocking:
        @hookimpl
        def check_response(self):
            return [Finding(detector="toxicity", message="rude")]

        @hookimpl
        def resolve_findings(self):
            return Resolution(action="block", reason="rude")

    with registered(bare_manager, Blocking()), pytest.raises(GuardrailViolation):
        await pipeline_on(provider, bare_manager, guard="enforce").run(QUESTION)
    spans = finished(exporter)
    turn = one(spans, TURN)
    assert turn.status.status_code is StatusCode.ERROR
    assert turn.attributes[sc.ERROR_TYPE] == "GuardrailViolation"
    assert one(spans, "persona_plugins resolve_findings").attributes[sc.PP_ACTION] == "block"


@pytest.mark.parametrize("usage", [None, (12, 5)])
@pytest.mark.parametrize("persona", ["pirate_captain", None])
async def test_a_passed_through_turn_records_what_its_built_turn_would(
    memory_tracing, bare_manager, usage, persona
):
    from persona_plugins.adapter_kit import (
        Reply,
        passed_through_turn,
        record_passed_through,
        record_turn,
    )
    from persona_plugins.model import Usage
    from persona_plugins.tracing import Telemetry

    provider, exporter = memory_tracing
    pipeline = pipeline_on(provider, bare_manager, persona=persona)
    prepared = await pipeline.prepare(QUESTION)
    reply = Reply(
        "Four.", usage=Usage(input_tokens=usage[0], output_tokens=usage[1]) if usage else None
    )
    telemetry = Telemetry(provider)
    with telemetry.span("built") as span:
        record_turn(span, passed_through_turn(prepared, reply))
    with telemetry.span("passed") as span:
        record_passed_through(span, prepared, reply)
    spans = finished(exporter)
    built, passed = one(spans, "built").attributes, one(spans, "passed").attributes
    assert dict(passed) == dict(built)
    assert list(passed) == list(built)  # same attributes, set in the same order
    assert passed[sc.PP_CHOSEN] == "persona"
    assert passed[sc.PP_PERSONA_SOURCE] == prepared.persona_source
    assert passed[sc.GEN_AI_USAGE_INPUT_TOKENS] == (usage[0] if usage else 0)


async def test_a_span_set_records_scalars_as_they_are_and_converts_the_rest(memory_tracing):
    from persona_plugins.tracing import Explanation, SafeSpan, Telemetry

    provider, exporter = memory_tracing
    with Telemetry(provider).span("s") as span:
        assert isinstance(span, SafeSpan) and span.recording
        span.set("a.int", 3)
        span.set("a.bool", False)
        span.set("a.none", None)
        span.set("a.list", ("x", "y"))
        span.set("a.explained", Explanation("the secret text", "redacted"))
        span.set("a.other", {"k": 1})
    attributes = one(finished(exporter), "s").attributes
    assert attributes["a.int"] == 3 and attributes["a.bool"] is False
    assert "a.none" not in attributes
    assert list(attributes["a.list"]) == ["x", "y"]
    assert attributes["a.explained"] == "redacted"  # content capture is off
    assert attributes["a.other"] == "{'k': 1}"


async def test_every_stage_span_is_named_after_its_stage_however_many_there_are(
    memory_tracing, bare_manager
):
    from persona_plugins.messages import normalize_messages
    from persona_plugins.stages import TurnContext

    provider, exporter = memory_tracing
    pipeline = pipeline_on(provider, bare_manager)
    turn = TurnContext.start(pipeline, normalize_messages(QUESTION))

    async def body(span):
        span.set("extra", 1)  # set on this stage's span only
        return "done"

    names = [f"custom_{i}" for i in range(80)] * 2  # more names than are kept, each twice
    for name in names:
        assert await turn.stage(name, body) == "done"
    spans = finished(exporter)
    assert [s.name for s in spans] == [f"persona_plugins {name}" for name in names]
    for span, name in zip(spans, names, strict=True):
        assert dict(span.attributes) == {sc.PP_STAGE: name, "extra": 1}
