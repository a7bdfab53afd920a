"""The AutoGen team handler inside a real RoundRobinGroupChat on the embedded model."""

from __future__ import annotations

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import SingleThreadedAgentRuntime
from autogen_ext.models.replay import ReplayChatCompletionClient

from persona_plugins.adapters.autogen import TeamGuardHandler, embedded_model_client

# AutoGen warns when a handler passes on the None that an RPC (the team start) returns.
pytestmark = [
    pytest.mark.model,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:Intervention handler on_response returned None"),
]

TASK = "Plan a picnic for six people. The budget must stay under 50 euros."


async def run_team(handler: TeamGuardHandler, clients, turns: int = 4):
    runtime = SingleThreadedAgentRuntime(intervention_handlers=[handler])
    runtime.start()
    agents = [AssistantAgent(f"member_{i}", model_client=c) for i, c in enumerate(clients)]
    team = RoundRobinGroupChat(
        agents, termination_condition=MaxMessageTermination(turns + 1), runtime=runtime
    )
    try:
        result = await team.run(task=TASK)
    finally:
        await runtime.stop_when_idle()
    return result


@pytest.fixture(scope="module")
def small_client():
    return embedded_model_client(generation={"max_tokens": 40})


async def test_enforce_annotates_the_message_that_runs_past_the_length_limit(small_client):
    handler = TeamGuardHandler(
        guard="enforce", detectors=[], max_turns=2, max_share=1.0, drift_threshold=0.0
    )
    result = await run_team(handler, [small_client, small_client])
    replies = [m for m in result.messages if m.source.startswith("member_")]
    assert [m.source for m in replies] == ["member_0", "member_1", "member_0", "member_1"]
    assert handler.monitor.task == TASK
    assert [speaker for speaker, _ in handler.monitor.transcript] == [m.source for m in replies]
    [length] = [f for f in handler.findings if f.detector == "discussion_length"]
    assert length.metadata["speaker"] == "member_0" and length.metadata["turn"] == 3
    assert "[persona-plugins team guard: the discussion has run past 2 turns" in replies[2].content
    assert "team guard" not in replies[0].content + replies[1].content
    assert handler.rewrites == 1
    original = handler.monitor.transcript[2][1]
    assert replies[2].content.startswith(original)


async def test_monitor_records_team_findings_without_rewriting(small_client):
    handler = TeamGuardHandler(guard="monitor", max_turns=2, min_turns=2, max_share=0.0)
    result = await run_team(handler, [small_client, small_client])
    detectors = {f.detector for f in handler.findings}
    assert {"discussion_length", "monopolization"} <= detectors
    assert handler.rewrites == 0
    assert all("persona-plugins" not in m.content for m in result.messages)


async def test_a_toxic_member_is_rewritten_never_dropped_and_the_team_finishes(
    small_client, memory_tracing
):
    provider, exporter = memory_tracing
    # The scripted member forces the fault; the other member is the real embedded model.
    toxic = ReplayChatCompletionClient(["I will kill you all if this picnic fails."] * 3)
    handler = TeamGuardHandler(guard="enforce", tracer_provider=provider)
    result = await run_team(handler, [toxic, small_client])
    replies = [m for m in result.messages if m.source.startswith("member_")]
    assert len(replies) == 4  # nothing was dropped, so the team did not hang
    assert replies[0].content.startswith("[persona-plugins withheld this message from member_0")
    assert "kill" not in replies[0].content
    threats = [f for f in handler.findings if f.detector == "toxicity"]
    assert threats and threats[0].metadata["category"] == "threat"
    spans = exporter.get_finished_spans()
    [guarded] = [
        s
        for s in spans
        if s.name == "persona_plugins team_guard"
        and s.attributes["gen_ai.agent.name"] == "member_0"
        and s.attributes["persona_plugins.guard.action"] == "block"
    ][:1]
    checks = [s for s in spans if s.name.endswith("check_response")]
    inside = [
        s for s in checks if s.parent is not None and s.parent.span_id == guarded.context.span_id
    ]
    events = [e for s in inside for e in s.events if e.name == "gen_ai.evaluation.result"]
    assert any(e.attributes["gen_ai.evaluation.name"] == "toxicity" for e in events)
