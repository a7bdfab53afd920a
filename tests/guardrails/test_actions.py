"""Guardrails through the pipeline: monitor records, enforce acts (annotate, fall back, regenerate,
block), findings reach spans and metrics, and the user's message is never lost."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from persona_plugins import GuardrailViolation, Persona, PersonaPipeline, hookimpl
from persona_plugins.guardrails.actions import (
    ANNOTATION_PREFIX,
    DEBIAS_INSTRUCTION,
    GuardActions,
    GuardPolicy,
    annotate,
)
from persona_plugins.results import Finding, Judgement
from tests.core.doubles import ScriptedModel, by_prompt, registered

QUESTION = "What is 15% of 80?"
REFUSAL = (
    "As a physically-disabled person, I am unable to perform mathematical calculations. "
    "Therefore, I am unable to answer this question."
)
CLEAN = "15% of 80 is 12. The answer is 12."


def pipeline(model, pm, **config):
    config.setdefault("persona", "physically_disabled")
    return PersonaPipeline(model, plugin_manager=pm, **config)


@pytest.fixture
def reader():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


def finding_counts(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    counts = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "persona_plugins.guard.findings":
                    for point in metric.data.data_points:
                        key = (point.attributes["detector"], point.attributes["severity"])
                        counts[key] = point.value
    return counts


async def test_monitor_records_findings_on_the_result_spans_and_metrics(
    plugin_manager, memory_tracing, reader
):
    provider, exporter = memory_tracing
    metric_reader, meter_provider = reader
    model = ScriptedModel(REFUSAL)
    result = await pipeline(
        model,
        plugin_manager,
        guard="monitor",
        tracer_provider=provider,
        meter_provider=meter_provider,
    ).run(QUESTION)
    assert result.text == REFUSAL
    assert result.action == "allow"
    assert [(f.detector, f.severity) for f in result.findings] == [("abstention", "high")]
    assert len(model.calls) == 1

    [check_span] = [s for s in exporter.get_finished_spans() if s.name.endswith("check_response")]
    [event] = [e for e in check_span.events if e.name == "gen_ai.evaluation.result"]
    assert event.attributes["gen_ai.evaluation.name"] == "abstention"
    assert event.attributes["gen_ai.evaluation.score.label"] == "high"
    assert event.attributes["gen_ai.evaluation.score.value"] == pytest.approx(0.9)
    # content capture is off: the explanation names the detector and its rule, never the text
    explanation = event.attributes["gen_ai.evaluation.explanation"]
    assert "detector=abstention" in explanation and "kind=refusal" in explanation
    assert "disabled" not in explanation
    assert finding_counts(metric_reader) == {("abstention", "high"): 1}


async def test_enforce_regenerates_once_with_the_debiasing_instruction(plugin_manager):
    model = ScriptedModel(REFUSAL, CLEAN)
    result = await pipeline(model, plugin_manager, guard="enforce").run(QUESTION)
    assert result.text == CLEAN
    assert result.action == "regenerate"
    assert result.model_calls == 2
    regenerated = model.calls[1]
    assert regenerated[0].role == "system"
    assert DEBIAS_INSTRUCTION in regenerated[0].content
    assert "physically-disabled person" in regenerated[0].content  # the persona stays
    assert regenerated[-1].content == QUESTION  # the user's message is kept


async def test_enforce_falls_back_to_a_clean_neutral_answer_without_another_call(plugin_manager):
    class PicksPersona:
        @hookimpl(tryfirst=True)
        def judge_candidates(self, candidates):
            return Judgement(chosen="persona", consistent=True, reason="test")

    model = ScriptedModel(default=by_prompt(persona=REFUSAL, neutral=CLEAN))
    with registered(plugin_manager, PicksPersona()):
        result = await pipeline(model, plugin_manager, guard="enforce", ensemble="jekyll_hyde").run(
            QUESTION
        )
    assert result.text == CLEAN
    assert result.action == "fallback"
    assert len(model.calls) == 2  # the persona and neutral candidates only


async def test_enforce_blocks_threats_with_a_violation_that_keeps_everything(plugin_manager):
    threat = "I will kill you if you ask again."
    model = ScriptedModel(threat)
    with pytest.raises(GuardrailViolation) as caught:
        await pipeline(model, plugin_manager, guard="enforce", persona="pirate_captain").run(
            QUESTION
        )
    error = caught.value
    assert [f.metadata["category"] for f in error.findings] == ["threat"]
    assert error.response == threat
    assert [m.content for m in error.messages] == [QUESTION]
    assert len(model.calls) == 1  # blocked outright, no regeneration


async def test_monitor_never_blocks(plugin_manager):
    result = await pipeline(
        ScriptedModel("I will kill you."), plugin_manager, guard="monitor", persona="pirate_captain"
    ).run(QUESTION)
    assert result.text == "I will kill you." and result.action == "allow"


async def test_a_regeneration_that_still_refuses_is_kept_with_a_note(plugin_manager):
    model = ScriptedModel(REFUSAL, REFUSAL)
    result = await pipeline(model, plugin_manager, guard="enforce").run(QUESTION)
    assert result.action == "regenerate"
    assert result.text.startswith(REFUSAL) and ANNOTATION_PREFIX in result.text


async def test_a_regeneration_that_turns_toxic_is_blocked(plugin_manager):
    model = ScriptedModel(REFUSAL, "Shut up. I will hurt you.")
    with pytest.raises(GuardrailViolation):
        await pipeline(model, plugin_manager, guard="enforce").run(QUESTION)


async def test_a_failed_regeneration_annotates_the_original(plugin_manager):
    model = ScriptedModel(REFUSAL, RuntimeError("model went away"))
    result = await pipeline(model, plugin_manager, guard="enforce").run(QUESTION)
    assert result.action == "annotate"
    assert result.text.startswith(REFUSAL) and ANNOTATION_PREFIX in result.text


async def test_a_persona_contradiction_is_annotated_without_a_model_call(plugin_manager):
    persona = Persona(name="ada", description="a teacher", statements=["I live in Lyon."])
    model = ScriptedModel("I live in Paris, by the Seine.")
    result = await pipeline(model, plugin_manager, guard="enforce", persona=persona).run(
        "Where do you live?"
    )
    assert result.action == "annotate"
    assert "persona_contradiction" in result.text
    assert len(model.calls) == 1


async def test_informational_findings_are_allowed_unchanged(plugin_manager):
    disclaimer = (
        "As a physically-disabled person, I am unable to write my work down. However, 15% of "
        "80 is 12, so the answer is 12."
    )
    result = await pipeline(ScriptedModel(disclaimer), plugin_manager, guard="enforce").run(
        QUESTION
    )
    assert [f.severity for f in result.findings] == ["info"]
    assert result.action == "allow" and result.text == disclaimer


async def test_only_the_configured_detectors_run(plugin_manager):
    result = await pipeline(
        ScriptedModel(REFUSAL), plugin_manager, guard="enforce", detectors=["toxicity"]
    ).run(QUESTION)
    assert result.findings == [] and result.text == REFUSAL


async def test_a_plugin_policy_replaces_the_default_actions(plugin_manager):
    strict = GuardActions(GuardPolicy(actions={"stereotype": "block"}))
    model = ScriptedModel("Honestly, women are bad at math.")
    with registered(plugin_manager, strict), pytest.raises(GuardrailViolation, match="stereotype"):
        await pipeline(model, plugin_manager, guard="enforce", persona="man").run("Who is good?")


def test_resolve_decides_allow_annotate_and_block_without_an_await():
    # Only a repair (fallback or regeneration) needs the model or a re-check: the quick decisions
    # come back as they are, for code that reads `.action` straight off `resolve()`.
    strict = GuardActions(GuardPolicy(actions={"stereotype": "block"}))
    high = Finding(detector="stereotype", message="m", severity="high")
    info = Finding(detector="stereotype", message="m", severity="info")
    blocked = strict.resolve([], "text", [high], [], None, None, None)
    allowed = strict.resolve([], "text", [info], [], None, None, None)
    assert (blocked.action, allowed.action) == ("block", "allow")


async def test_resolve_outside_a_pipeline_repairs_with_the_builtin_detectors():
    repaired = GuardActions().resolve(
        [],
        REFUSAL,
        [Finding(detector="abstention", message="m", severity="high")],
        [],
        None,
        None,
        None,
    )
    resolution = await repaired  # no way to regenerate without a pipeline: annotated
    assert resolution.action == "annotate" and "outside a pipeline" in resolution.reason


def test_annotate_names_at_most_three_findings():
    findings = [Finding(detector=f"d{i}", message=f"m{i}") for i in range(5)]
    note = annotate("text", findings)
    assert note.startswith("text\n\n" + ANNOTATION_PREFIX) and "(+2 more)" in note


async def test_the_autogen_client_guards_every_call(plugin_manager):
    from autogen_core.models import UserMessage

    from persona_plugins.adapters.autogen import (
        ChatModelCompletionClient,
        PersonaChatCompletionClient,
    )

    inner = ChatModelCompletionClient(ScriptedModel(REFUSAL, CLEAN, default=CLEAN))
    client = PersonaChatCompletionClient(
        inner, persona="physically_disabled", guard="enforce", plugin_manager=plugin_manager
    )
    result = await client.create([UserMessage(content=QUESTION, source="user")])
    assert result.content == CLEAN
    assert client.last_result is not None and client.last_result.action == "regenerate"
    again = await client.create([UserMessage(content=QUESTION, source="user")])
    assert again.content == CLEAN and client.last_result.findings == []
