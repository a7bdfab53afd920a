"""SK orchestrations of persona agents on ``InProcessRuntime``, on the embedded model.

The orchestrations call their agents' ``invoke_stream``, which calls the chat service directly:
each agent has its own ``PersonaChatCompletion`` around one shared embedded-model service.
SmolLM2-135M is weak, so these tests check structure (whose call carried which persona, how many
calls, that the run ends with a result), never the content of an answer.
"""

from __future__ import annotations

import pytest
from semantic_kernel.agents import (
    ChatCompletionAgent,
    GroupChatOrchestration,
    RoundRobinGroupChatManager,
    SequentialOrchestration,
)
from semantic_kernel.agents.runtime import InProcessRuntime
from semantic_kernel.contents import ChatMessageContent

from persona_plugins.adapters.semantic_kernel import PersonaChatCompletion
from persona_plugins.injection import render_persona

from .doubles import RecordingChatCompletion, RecordingModel

pytestmark = pytest.mark.model

TASK = "Why did people build castles?"
TIMEOUT_S = 300


def persona_agents(model, names: list[str], **options) -> list[ChatCompletionAgent]:
    agents = []
    for name in names:
        service = PersonaChatCompletion(RecordingChatCompletion(model), persona=name, **options)
        agents.append(
            ChatCompletionAgent(
                name=name,
                description=f"A {name.replace('_', ' ')}.",
                service=service,
            )
        )
    return agents


def persona_prompt(agent: ChatCompletionAgent) -> str:
    config = agent.service.pipeline.config
    return render_persona(config.persona, config.persona_template)


async def run(orchestration, task: str = TASK) -> object:
    runtime = InProcessRuntime()
    runtime.start()
    try:
        result = await orchestration.invoke(task=task, runtime=runtime)
        return await result.get(timeout=TIMEOUT_S)
    finally:
        await runtime.stop_when_idle()


async def test_a_sequential_orchestration_of_persona_agents(recording_model: RecordingModel):
    agents = persona_agents(recording_model, ["historian", "children_tutor"])
    responses: list[ChatMessageContent] = []
    final_chunks: list[bool] = []
    orchestration = SequentialOrchestration(
        members=agents,
        agent_response_callback=responses.append,
        streaming_agent_response_callback=lambda chunk, is_final: final_chunks.append(is_final),
    )

    value = await run(orchestration)

    assert isinstance(value, ChatMessageContent) and value.content.strip()
    assert [r.name for r in responses] == ["historian", "children_tutor"]
    assert final_chunks.count(True) == 2
    for agent in agents:
        inner = agent.service.inner
        assert [call["kind"] for call in inner.received] == ["stream"]
        first = inner.received[0]["messages"][0]
        assert first.role.value == "system" and first.content == persona_prompt(agent)
        assert agent.service.model_calls == 1 and agent.service.usage.output_tokens > 0
    # the second agent worked on the first one's answer
    handed_over = agents[1].service.inner.received[0]["messages"][-1]
    assert handed_over.content == responses[0].content


async def test_a_group_chat_of_ensembling_persona_agents(recording_model: RecordingModel):
    agents = persona_agents(
        recording_model,
        ["historian", "children_tutor"],
        ensemble="jekyll_hyde",
        model_settings={"max_tokens": 24},
    )
    responses: list[ChatMessageContent] = []
    orchestration = GroupChatOrchestration(
        members=agents,
        manager=RoundRobinGroupChatManager(max_rounds=2),
        agent_response_callback=responses.append,
    )

    value = await run(orchestration)

    assert isinstance(value, ChatMessageContent) and value.content.strip()
    assert [r.name for r in responses] == ["historian", "children_tutor"]
    for agent, response in zip(agents, responses, strict=True):
        turn = agent.service.last_result
        assert turn is not None and turn.persona.name == agent.name
        assert {c.name for c in turn.candidates} >= {"persona", "neutral"}
        assert response.content == turn.text, "the streamed chunks add up to the turn's text"
    assert sum(a.service.model_calls for a in agents) == len(recording_model.calls)
