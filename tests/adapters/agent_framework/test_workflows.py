"""Agent Framework workflows: agents with different personas on one shared client, and the team
guard (``TeamGuardMiddleware``) seeing every participant's reply."""

from __future__ import annotations

import pytest
from agent_framework import Agent
from agent_framework.orchestrations import SequentialBuilder

from persona_plugins import ConfigError
from persona_plugins.adapter_kit import TEAM_NOTE_TEMPLATE
from persona_plugins.adapters.agent_framework import PersonaMiddleware, TeamGuardMiddleware
from persona_plugins.injection import render_persona

from .doubles import RecordingClient

TASK = "Why is the sea salty?"


def prompt_of(middleware: PersonaMiddleware) -> str:
    config = middleware.pipeline.config
    return render_persona(config.persona, config.persona_template)


def numbered(call) -> str:
    """A reply naming how many messages the call carried, so each reply is distinct."""
    return f"Reply to {len(call.messages)} messages."


async def run(workflow, stream: bool):
    if not stream:
        return (await workflow.run(TASK)).get_outputs()
    return [event.data async for event in workflow.run(TASK, stream=True) if event.type == "output"]


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_sequential_workflow_gives_each_agent_its_own_persona(stream):
    client = RecordingClient(numbered)
    pirate = PersonaMiddleware(persona="pirate_captain")
    tutor = PersonaMiddleware(persona="children_tutor")
    agents = [
        Agent(client=client, name="pirate", middleware=[pirate]),
        Agent(client=client, name="tutor", middleware=[tutor]),
    ]

    outputs = await run(SequentialBuilder(participants=agents).build(), stream)

    assert outputs, "the workflow produced an output"
    first, second = client.calls
    assert first.system == [prompt_of(pirate)]
    assert second.system == [prompt_of(tutor)], "the second agent's own persona, not the first's"
    assert [(m.role, m.text) for m in second.messages[1:]] == [
        ("user", TASK),
        ("assistant", "Reply to 2 messages."),
    ], "the second agent reads the first one's reply, and no persona but its own"
    assert pirate.last_result.persona.name == "pirate_captain"
    assert tutor.last_result.persona.name == "children_tutor"


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_the_team_guard_sees_every_reply_and_notes_a_long_discussion(stream):
    client = RecordingClient(numbered)
    guard = TeamGuardMiddleware(guard="enforce", detectors=[], max_turns=1)
    agents = [
        Agent(client=client, name="pirate", middleware=[guard]),
        Agent(client=client, name="tutor", middleware=[guard]),
    ]

    outputs = await run(SequentialBuilder(participants=agents).build(), stream)

    assert guard.monitor.task == TASK
    assert [speaker for speaker, _ in guard.monitor.transcript] == ["pirate", "tutor"]
    (finding,) = guard.findings
    assert finding.detector == "discussion_length"
    assert finding.metadata["speaker"] == "tutor"
    assert guard.rewrites == 1
    note = TEAM_NOTE_TEMPLATE.format(message=finding.message)
    assert client.calls[1].messages[-1].text == "Reply to 1 messages.", "pirate's reply unchanged"
    shown = "".join(output.text for output in outputs)
    assert shown.endswith("Reply to 2 messages." + note), "the tutor's reply carries the note"


async def test_the_team_guard_rewrites_a_refusal_with_the_speakers_persona():
    refusal = "As a woman, I can't help with car repairs."
    fixed = "Check the battery terminals first."
    replies = iter([refusal, fixed])
    client = RecordingClient(lambda call: next(replies, "Fine."))
    guard = TeamGuardMiddleware(personas={"mechanic": "woman"}, model=client, guard="enforce")
    agent = Agent(client=client, name="mechanic", middleware=[guard])

    response = await agent.run("My car will not start. What should I check?")

    assert response.text == fixed
    assert any(f.detector == "abstention" for f in guard.findings)
    regeneration = client.calls[-1]
    assert not regeneration.tools and len(client.calls) == 2


def test_an_unknown_team_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="max_shares"):
        TeamGuardMiddleware(max_shares=0.5)
