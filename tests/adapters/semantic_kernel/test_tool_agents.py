"""Agents on a kernel with functions get the same protection as agents without (issue 11, item 5).

A real ``ChatCompletionAgent`` on a real kernel with a real function, its service wrapped in
``PersonaChatCompletion(..., guard="enforce")``. The service forces the replies SmolLM2 would not
write (a function call, a refusal in character); SK's own function-calling loop runs the function.
"""

from __future__ import annotations

import pytest
from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent
from semantic_kernel.connectors.ai.function_choice_behavior import FunctionChoiceBehavior
from semantic_kernel.contents import ChatHistory, FunctionCallContent
from semantic_kernel.functions import kernel_function

from persona_plugins.adapters.semantic_kernel import PersonaChatCompletion
from persona_plugins.guardrails.actions import DEBIAS_INSTRUCTION
from persona_plugins.injection import render_persona

from .doubles import ScriptedReplyChatCompletion, texts

pytestmark = pytest.mark.model

TASK = "My car will not start. What should I check?"
REFUSAL = "As a woman, I can't help with car repairs."
FIXED = "Check the battery terminals first, then the starter fuse."


class Manual:
    def __init__(self) -> None:
        self.parts: list[str] = []

    @kernel_function(name="where", description="Where a part of the car is.")
    def where(self, part: str) -> str:
        self.parts.append(part)
        return f"The {part} is behind the left headlight."


def mechanic(
    recording_model, replies: list[str], *, call_first: bool, guard: str = "enforce"
) -> tuple[ChatCompletionAgent, PersonaChatCompletion, ScriptedReplyChatCompletion, Manual]:
    inner = ScriptedReplyChatCompletion(
        recording_model, function="car-where", arguments={"part": "fuse box"}
    )
    inner.replies = list(replies)
    inner.call_first = call_first
    service = PersonaChatCompletion(inner, persona="woman", guard=guard)
    manual = Manual()
    kernel = Kernel()
    kernel.add_plugin(manual, "car")
    agent = ChatCompletionAgent(service=service, name="mechanic", kernel=kernel)
    return agent, service, inner, manual


def persona_prompt(service: PersonaChatCompletion) -> str:
    config = service.pipeline.config
    return render_persona(config.persona, config.persona_template)


@pytest.mark.parametrize("call_first", [False, True], ids=["answers-directly", "after-a-call"])
async def test_a_refusal_in_character_is_regenerated(recording_model, call_first):
    agent, service, inner, manual = mechanic(
        recording_model, [REFUSAL, FIXED], call_first=call_first
    )

    response = await agent.get_response(TASK)

    assert response.message.content == FIXED
    assert manual.parts == (["fuse box"] if call_first else [])
    turn = service.last_result
    assert turn is not None and turn.text == FIXED and turn.action == "regenerate"
    assert any(f.detector == "abstention" for f in turn.findings)
    assert turn.persona.name == "woman" and turn.system_prompt == persona_prompt(service)
    calls = turn.candidates[0].metadata.get("tool_calls", [])
    assert [c["name"] for c in calls] == (["car-where"] if call_first else [])
    assert turn.model_calls == service.model_calls == len(inner.received)
    *answered, regeneration = inner.received
    assert texts(answered[0]["messages"])[0] == ("system", persona_prompt(service))
    assert DEBIAS_INSTRUCTION in texts(regeneration["messages"])[0][1]
    if call_first:
        assert any(
            isinstance(i, FunctionCallContent) for m in regeneration["messages"] for i in m.items
        ), "the regeneration sees the function's result"


async def test_a_streaming_agent_never_shows_the_refusal(recording_model):
    agent, service, _, manual = mechanic(recording_model, [REFUSAL, FIXED], call_first=True)

    chunks = [item.message async for item in agent.invoke_stream(TASK)]

    text = "".join(c.content for c in chunks)
    assert text == FIXED and "woman" not in text
    assert manual.parts == ["fuse box"]
    assert service.last_result.action == "regenerate"
    assert chunks[-1].metadata["persona_plugins"]["action"] == "regenerate"


async def test_monitor_records_the_finding_and_keeps_the_reply(recording_model):
    agent, service, inner, _ = mechanic(
        recording_model, [REFUSAL], call_first=False, guard="monitor"
    )

    response = await agent.get_response(TASK)

    assert response.message.content == REFUSAL
    assert any(f.detector == "abstention" for f in service.last_result.findings)
    assert service.last_result.action == "allow" and len(inner.received) == 1


@pytest.mark.parametrize("streaming", [False, True], ids=["call", "stream"])
async def test_a_function_call_handed_back_passes_through_untouched(recording_model, streaming):
    inner = ScriptedReplyChatCompletion(
        recording_model, function="car-where", arguments={"part": "fuse box"}
    )
    service = PersonaChatCompletion(inner, persona="woman", guard="enforce")
    kernel = Kernel()
    kernel.add_plugin(Manual(), "car")
    settings = service.instantiate_prompt_execution_settings(
        function_choice_behavior=FunctionChoiceBehavior.Auto(auto_invoke=False)
    )
    history = ChatHistory()
    history.add_user_message(TASK)

    if streaming:
        batches = [
            batch
            async for batch in service.get_streaming_chat_message_contents(
                history, settings, kernel=kernel
            )
        ]
        [[message]] = batches
    else:
        [message] = await service.get_chat_message_contents(history, settings, kernel=kernel)

    [call] = [i for i in message.items if isinstance(i, FunctionCallContent)]
    assert call.name == "car-where" and len(inner.received) == 1, "no guard call, no rewrite"
    turn = service.last_result
    assert turn.action == "allow" and turn.findings == [] and turn.model_calls == 1
    assert [c["name"] for c in turn.candidates[0].metadata["tool_calls"]] == ["car-where"]
    assert turn.system_prompt == persona_prompt(service)
