"""Metrics through opentelemetry-api, and the optional span around every hook call."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from persona_plugins import Completion, PersonaPipeline, Usage, hookimpl
from persona_plugins.results import Finding


class Model:
    model_name = "scripted"

    async def complete(self, messages, **settings):
        system = messages[0].content if messages[0].role == "system" else ""
        if system.startswith("You are an impartial grader"):
            text = "Verdict: 1"  # always the first position: never consistent
        elif system.startswith("You are"):
            text = "The answer is 4."
        else:
            text = "The answer is 5."
        return Completion(text=text, usage=Usage(input_tokens=7, output_tokens=3))


def points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


@pytest.fixture
def reader():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


async def test_model_calls_tokens_stages_and_judge_decisions_are_measured(reader, plugin_manager):
    reader, provider = reader
    pipeline = PersonaPipeline(
        Model(),
        persona="chef",
        ensemble="jekyll_hyde",
        judge={"retries": 0},
        plugin_manager=plugin_manager,
        meter_provider=provider,
    )
    await pipeline.run("What is 2 + 2?")
    data = points(reader)

    calls = {
        dp.attributes["gen_ai.agent.name"]: dp.value for dp in data["persona_plugins.model_calls"]
    }
    assert calls == {"persona_candidate": 1, "neutral_candidate": 1, "judge": 2}
    tokens = {
        dp.attributes["gen_ai.token.type"]: dp.sum for dp in data["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": 28, "output": 12}
    [duration] = data["gen_ai.client.operation.duration"]
    assert duration.count == 4 and duration.attributes["gen_ai.operation.name"] == "chat"
    stages = {
        dp.attributes["persona_plugins.stage"] for dp in data["persona_plugins.stage.duration"]
    }
    assert {"select_persona", "generate_candidates", "judge_candidates"} <= stages
    [decision] = data["persona_plugins.judge.decisions"]
    assert dict(decision.attributes) == {"consistent": False, "fallback": True, "judged": True}


async def test_guard_findings_and_refinement_rounds_are_counted(reader, plugin_manager):
    reader, provider = reader

    class Flagging:
        @hookimpl
        def check_response(self):
            return [Finding(detector="shouting", message="all caps", severity="info")]

    plugin_manager.register(Flagging())
    pipeline = PersonaPipeline(
        Model(),
        persona="chef",
        guard="monitor",
        refine="sequential",
        plugin_manager=plugin_manager,
        meter_provider=provider,
    )
    await pipeline.run("What is 2 + 2?")
    data = points(reader)
    [finding] = data["persona_plugins.guard.findings"]
    assert dict(finding.attributes) == {"detector": "shouting", "severity": "info"}
    assert finding.value == 1
    [rounds] = data["persona_plugins.refine.rounds"]
    assert rounds.count == 1
    reviews = {dp.attributes["refiner"] for dp in data["persona_plugins.refine.reviews"]}
    assert reviews == {"factuality", "persona", "coherence"}


async def test_a_broken_meter_provider_never_breaks_a_turn(plugin_manager):
    class Broken:
        def get_meter(self, *args, **kwargs):
            raise RuntimeError("meter provider down")

    result = await PersonaPipeline(
        Model(), persona="chef", plugin_manager=plugin_manager, meter_provider=Broken()
    ).run("What is 2 + 2?")
    assert result.text == "The answer is 4."


@pytest.fixture
def unset_global_meter_provider(monkeypatch):
    """No global meter provider for this test, and setting one allowed (OpenTelemetry lets a
    process set it once): its global, its stand-in and the instruments made on that stand-in
    are this test's own, and put back afterwards."""
    from opentelemetry.metrics import _internal as state
    from opentelemetry.util._once import Once

    import persona_plugins.metrics as pp_metrics

    monkeypatch.setattr(state, "_METER_PROVIDER", None)
    monkeypatch.setattr(state, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(state, "_PROXY_METER_PROVIDER", state._ProxyMeterProvider())
    monkeypatch.setattr(pp_metrics, "_global", [])
    return state


@pytest.mark.parametrize("entry", ["run", "prepare"])
async def test_a_meter_provider_set_globally_after_build_is_used_from_the_next_turn(
    entry, unset_global_meter_provider, plugin_manager
):
    from opentelemetry import metrics

    pipeline = PersonaPipeline(Model(), persona="chef", plugin_manager=plugin_manager)
    await getattr(pipeline, entry)("What is 2 + 2?")  # no provider yet: nothing measured
    await getattr(pipeline, entry)("What is 2 + 2?")
    assert not pipeline.metrics.enabled
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        metrics.set_meter_provider(provider)
        assert pipeline.metrics.enabled
        await getattr(pipeline, entry)("What is 2 + 2?")
        data = points(reader)
    finally:
        provider.shutdown()
    stages = [
        (dp.attributes["persona_plugins.stage"], dp.count)
        for dp in data["persona_plugins.stage.duration"]
    ]
    # the one turn after the provider was set, each of its stages once
    assert ("select_persona", 1) in stages and ("inject_persona", 1) in stages
    if entry == "run":
        [calls] = data["persona_plugins.model_calls"]
        assert calls.value == 1


async def test_a_no_op_meter_provider_set_globally_records_nothing(
    unset_global_meter_provider, plugin_manager
):
    from opentelemetry import metrics
    from opentelemetry.metrics import NoOpMeterProvider

    pipeline = PersonaPipeline(Model(), persona="chef", plugin_manager=plugin_manager)
    assert not pipeline.metrics.enabled
    metrics.set_meter_provider(NoOpMeterProvider())
    assert not pipeline.metrics.enabled
    assert not PersonaPipeline(
        Model(), persona="chef", plugin_manager=plugin_manager
    ).metrics.enabled


async def test_hook_spans_name_the_plugins_each_hook_called(
    monkeypatch, memory_tracing, plugin_manager
):
    provider, exporter = memory_tracing
    monkeypatch.setenv("PERSONA_PLUGINS_TRACE_HOOKS", "1")

    class Extra:
        @hookimpl
        def on_turn_complete(self):
            return None

    plugin_manager.register(Extra(), name="my-observer")
    pipeline = PersonaPipeline(
        Model(), persona="chef", plugin_manager=plugin_manager, tracer_provider=provider
    )
    await pipeline.run("What is 2 + 2?")
    await pipeline.run("And 3 + 3?")  # enabled once per plugin manager: no duplicate spans
    spans = exporter.get_finished_spans()
    inject = [s for s in spans if s.name == "persona_plugins.hook inject_persona"]
    assert len(inject) == 2
    assert list(inject[0].attributes["persona_plugins.plugin"]) == ["persona_plugins.injection"]
    [stage] = [s for s in spans if s.name == "persona_plugins inject_persona"][:1]
    assert inject[0].parent.span_id == stage.context.span_id
    observed = [s for s in spans if s.name == "persona_plugins.hook on_turn_complete"]
    assert "my-observer" in observed[0].attributes["persona_plugins.plugin"]


async def test_no_hook_spans_without_the_variable(monkeypatch, memory_tracing, plugin_manager):
    provider, exporter = memory_tracing
    monkeypatch.delenv("PERSONA_PLUGINS_TRACE_HOOKS", raising=False)
    await PersonaPipeline(
        Model(), persona="chef", plugin_manager=plugin_manager, tracer_provider=provider
    ).run("What is 2 + 2?")
    assert not [s for s in exporter.get_finished_spans() if "persona_plugins.hook" in s.name]
