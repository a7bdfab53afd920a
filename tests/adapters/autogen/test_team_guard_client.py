"""``TeamGuardClient``: the team checks from a member's model client (settings, streaming, tool
calls, serialization, and a real AgentChat team with no intervention handler).

The members' inner clients are AutoGen's ``ReplayChatCompletionClient`` with scripted replies: what
is under test is the team check on the transcript, which needs replies of a known length.
"""

from __future__ import annotations

import inspect

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import FunctionCall
from autogen_core.models import ChatCompletionClient, CreateResult, RequestUsage, UserMessage
from autogen_ext.models.replay import ReplayChatCompletionClient

from persona_plugins import ConfigError, Persona
from persona_plugins.adapters.autogen import TeamGuardClient
from persona_plugins.guardrails.team import TeamMonitor

TASK = "Plan a picnic for six people. The budget must stay under 50 euros."
LONG = "The picnic for six needs bread, cheese and fruit, and the budget stays near 30 euros. " * 2
NOTE = "[persona-plugins team guard: "


def conversation(*turns: tuple[str, str]) -> list[UserMessage]:
    return [UserMessage(content=TASK, source="user")] + [
        UserMessage(content=text, source=speaker) for speaker, text in turns
    ]


def test_the_client_declares_no_threshold_of_its_own_and_refuses_unknown_settings():
    own = set(inspect.signature(TeamGuardClient).parameters)
    assert not own & (set(inspect.signature(TeamMonitor).parameters) - {"task"})
    client = TeamGuardClient(ReplayChatCompletionClient(["x"]), "chef", max_share=0.4)
    assert client.team_guard.monitor.max_share == 0.4
    with pytest.raises(ConfigError, match="maxturns"):
        TeamGuardClient(ReplayChatCompletionClient(["x"]), "chef", maxturns=3)
    with pytest.raises(ConfigError, match="speaker"):
        TeamGuardClient(ReplayChatCompletionClient(["x"]), " ")
    with pytest.raises(TypeError, match="ChatCompletionClient"):
        TeamGuardClient("gpt-4o", "chef")  # type: ignore[arg-type]


async def test_a_streamed_reply_that_gets_a_note_is_streamed_as_its_new_text():
    inner = ReplayChatCompletionClient([LONG])
    client = TeamGuardClient(inner, "chef", detectors=[], min_turns=3, max_turns=None)
    talk = conversation(("chef", LONG), ("tutor", "Yes."))

    chunks = [c async for c in client.create_stream(talk)]

    *pieces, final = chunks
    assert isinstance(final, CreateResult) and all(isinstance(p, str) for p in pieces)
    assert final.content.startswith(LONG.rstrip()) and f"{NOTE}chef has spoken" in final.content
    assert "".join(pieces) == final.content
    assert [f.detector for f in client.findings] == ["monopolization"]


async def test_a_streamed_reply_in_monitor_mode_streams_as_the_inner_client_wrote_it():
    inner_chunks = [c async for c in ReplayChatCompletionClient([LONG]).create_stream([])]
    client = TeamGuardClient(
        ReplayChatCompletionClient([LONG]), "chef", guard="monitor", detectors=[], min_turns=3
    )

    chunks = [c async for c in client.create_stream(conversation(("chef", LONG), ("b", "Yes.")))]

    assert chunks[:-1] == inner_chunks[:-1] and chunks[-1].content == LONG
    assert [f.detector for f in client.findings] == ["monopolization"]


async def test_a_tool_call_passes_through_unchecked():
    call = CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id="1", name="prices", arguments="{}")],
        usage=RequestUsage(prompt_tokens=1, completion_tokens=1),
        cached=False,
    )
    client = TeamGuardClient(ReplayChatCompletionClient([call]), "chef", detectors=[], max_turns=0)

    result = await client.create(conversation(("tutor", "Check the prices.")))

    assert result.content == call.content
    assert client.findings == [] and client.team_guard.monitor.transcript == []


def test_the_client_round_trips_as_a_component_and_live_personas_are_refused():
    inner = ReplayChatCompletionClient(["x"])
    client = TeamGuardClient(inner, "chef", TASK, guard="monitor", max_turns=5, personas={})
    loaded = ChatCompletionClient.load_component(client.dump_component())
    assert isinstance(loaded, TeamGuardClient) and isinstance(loaded.inner, type(inner))
    assert (loaded.speaker, loaded.team_guard.monitor.task) == ("chef", TASK)
    assert loaded.team_guard.config.guard == "monitor"
    assert loaded.team_guard.monitor.max_turns == 5

    live = TeamGuardClient(
        inner, "chef", personas={"chef": Persona(name="chef", description="a chef")}
    )
    with pytest.raises(ConfigError, match=r"\['chef'\].*catalog names or files"):
        live.dump_component()


async def test_an_agentchat_team_is_guarded_with_no_intervention_handler():
    settings = {"detectors": [], "min_turns": 3, "max_turns": 3}
    chef = TeamGuardClient(ReplayChatCompletionClient([LONG] * 2), "chef", **settings)
    tutor = TeamGuardClient(ReplayChatCompletionClient(["Agreed."] * 2), "tutor", **settings)
    agents = [
        AssistantAgent("chef", model_client=chef),
        AssistantAgent("tutor", model_client=tutor),
    ]
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(5))

    result = await team.run(task=TASK)

    replies = [m.content for m in result.messages if m.source != "user"]
    assert len(replies) == 4
    assert NOTE not in replies[0] + replies[1]
    assert f"{NOTE}chef has spoken" in replies[2]  # the chef's own guard, third member turn
    assert "run past 3 turns" in replies[3]  # the tutor's guard, fourth member turn
    assert [s for s, _ in tutor.team_guard.monitor.transcript] == [
        "user",
        "chef",
        "tutor",
        "chef",
        "tutor",
    ]
