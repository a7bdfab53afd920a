"""Agents with tools get the same protection as agents without (issue 11, item 5).

Real ``AssistantAgent`` objects with a real tool, under ``guard="enforce"``. The model's replies are
forced by the recording double (SmolLM2 cannot call a tool, nor be relied on to refuse "as a
woman"); everything between the agent and the double is the real adapter and pipeline.
"""

from __future__ import annotations

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import (
    ModelClientStreamingChunkEvent,
    TextMessage,
    ToolCallExecutionEvent,
)
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage, UserMessage
from autogen_core.tools import FunctionTool

from persona_plugins.adapters.autogen import PersonaChatCompletionClient
from persona_plugins.guardrails.actions import DEBIAS_INSTRUCTION
from persona_plugins.injection import render_persona

from .doubles import WITH_TOOLS_AND_VISION, RecordingClient

TASK = "My car will not start. What should I check?"
REFUSAL = "As a woman, I can't help with car repairs."
FIXED = "Check the battery terminals first, then the starter fuse."
USAGE = RequestUsage(prompt_tokens=12, completion_tokens=5)


def car_manual(part: str) -> str:
    """Where a part is, from the car's manual."""
    return f"The {part} is behind the left headlight."


def mechanic(
    inner: RecordingClient, *, tools: bool = True, guard: str = "enforce", **agent_options
) -> tuple[AssistantAgent, PersonaChatCompletionClient]:
    client = PersonaChatCompletionClient(inner, persona="woman", guard=guard)
    agent = AssistantAgent(
        "mechanic",
        model_client=client,
        tools=[FunctionTool(car_manual, description="Where a part is.")] if tools else None,
        system_message="Answer in one short sentence.",
        **agent_options,
    )
    return agent, client


def persona_prompt(client: PersonaChatCompletionClient) -> str:
    config = client.pipeline.config
    return render_persona(config.persona, config.persona_template)


@pytest.mark.parametrize("tools", [True, False], ids=["with-a-tool", "without-tools"])
async def test_a_refusal_in_character_is_regenerated_with_or_without_tools(tools):
    inner = RecordingClient([REFUSAL, FIXED], usage=USAGE, model_info=WITH_TOOLS_AND_VISION)
    agent, client = mechanic(inner, tools=tools)

    result = await agent.run(task=TASK)

    answer = result.messages[-1]
    assert isinstance(answer, TextMessage) and answer.content == FIXED
    turn = client.last_result
    assert turn is not None, "last_result is set for an agent with tools too"
    assert turn.text == FIXED and turn.action == "regenerate"
    assert any(f.detector == "abstention" for f in turn.findings)
    assert turn.persona.name == "woman"
    assert turn.model_calls == client.model_calls == len(inner.calls) == 2
    first, regeneration = inner.calls
    assert bool(first["tools"]) is tools
    assert first["messages"][0].content == persona_prompt(client)
    assert regeneration["tools"] == [], "the regeneration asks for text"
    assert persona_prompt(client) in regeneration["messages"][0].content
    assert DEBIAS_INSTRUCTION in regeneration["messages"][0].content
    assert client.total_usage() == RequestUsage(prompt_tokens=24, completion_tokens=10)


async def test_the_text_reply_after_a_tool_call_is_guarded_and_the_call_passes_untouched():
    call = CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id="call_1", name="car_manual", arguments='{"part": "fuse box"}')],
        usage=USAGE,
        cached=False,
    )
    inner = RecordingClient([call, REFUSAL, FIXED], usage=USAGE, model_info=WITH_TOOLS_AND_VISION)
    agent, client = mechanic(inner, reflect_on_tool_use=True)

    result = await agent.run(task=TASK)

    executed = next(m for m in result.messages if isinstance(m, ToolCallExecutionEvent))
    assert executed.content[0].content == "The fuse box is behind the left headlight."
    assert result.messages[-1].content == FIXED
    tool_call, reflection, regeneration = inner.calls
    assert tool_call["tools"] and tool_call["messages"][0].content == persona_prompt(client)
    assert reflection["tool_choice"] == "none"
    assert reflection["messages"][0].content == persona_prompt(client)
    assert DEBIAS_INSTRUCTION in regeneration["messages"][0].content
    assert client.last_result.action == "regenerate"
    assert client.model_calls == 3


async def test_a_streaming_agent_never_shows_the_refusal():
    inner = RecordingClient([REFUSAL, FIXED], usage=USAGE, model_info=WITH_TOOLS_AND_VISION)
    agent, client = mechanic(inner, model_client_stream=True)

    events = [event async for event in agent.run_stream(task=TASK)]

    chunks = [e.content for e in events if isinstance(e, ModelClientStreamingChunkEvent)]
    assert "".join(chunks) == FIXED
    assert not any("woman" in chunk for chunk in chunks)
    assert events[-1].messages[-1].content == FIXED
    assert [c["kind"] for c in inner.calls] == ["stream", "create"]
    assert client.last_result.action == "regenerate"


async def test_monitor_mode_records_the_finding_and_keeps_the_reply():
    inner = RecordingClient([REFUSAL], usage=USAGE, model_info=WITH_TOOLS_AND_VISION)
    agent, client = mechanic(inner, guard="monitor")

    result = await agent.run(task=TASK)

    assert result.messages[-1].content == REFUSAL
    assert any(f.detector == "abstention" for f in client.last_result.findings)
    assert client.last_result.action == "allow"
    assert len(inner.calls) == 1


async def test_a_clean_reply_from_an_agent_with_a_tool_comes_back_as_the_inner_clients_own():
    clean = CreateResult(finish_reason="stop", content=FIXED, usage=USAGE, cached=False)
    inner = RecordingClient([clean], model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(inner, persona="woman", guard="enforce")
    tool = FunctionTool(car_manual, description="Where a part is.")

    result = await client.create([UserMessage(content=TASK, source="user")], tools=[tool])

    assert result is clean
    assert client.last_result.action == "allow" and client.last_result.findings == []
    assert client.last_result.text == FIXED and client.model_calls == 1
