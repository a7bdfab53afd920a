"""AutoGen's own ``OpenAIChatCompletionClient``, pointed at a real ``llama_cpp.server`` on loopback,
wrapped in ``PersonaChatCompletionClient`` and driven by a real ``AssistantAgent``.

``AssistantAgent`` only calls ``create`` / ``create_stream`` and reads ``model_info``; nothing here
counts tokens, because the OpenAI client counts them with tiktoken, which downloads its encodings
on first use (and this machine is offline).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import openai
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import ModelClientStreamingChunkEvent, TextMessage
from autogen_core.models import CreateResult, LLMMessage, ModelInfo, SystemMessage, UserMessage
from autogen_ext.models.openai import OpenAIChatCompletionClient

from persona_plugins.adapters.autogen import PersonaChatCompletionClient
from persona_plugins.injection import render_persona

MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=False,
    family="unknown",
    structured_output=False,
)
MAX_TOKENS = 48


class RecordingOpenAIClient(OpenAIChatCompletionClient):
    """The real OpenAI client, also keeping the messages of every call it is given."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.received: list[list[LLMMessage]] = []
        self.stream_options: list[dict[str, Any]] = []

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        self.received.append(list(messages))
        return await super().create(messages, **kwargs)

    def create_stream(self, messages: Sequence[LLMMessage], **kwargs: Any):  # type: ignore[override]
        self.received.append(list(messages))
        self.stream_options.append(kwargs)
        return super().create_stream(messages, **kwargs)


def openai_client(base_url: str, **options: Any) -> RecordingOpenAIClient:
    return RecordingOpenAIClient(
        model="smollm2",
        base_url=base_url,
        api_key="none",
        model_info=MODEL_INFO,
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        **options,
    )


def prompt_of(client: PersonaChatCompletionClient) -> str:
    return render_persona(client.pipeline.config.persona, client.pipeline.config.persona_template)


@pytest.mark.server
async def test_an_assistant_agent_answers_through_the_wrapped_openai_client(llama_server):
    inner = openai_client(llama_server)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    agent = AssistantAgent(
        "captain", model_client=client, system_message="Answer in one short sentence."
    )

    result = await agent.run(task="Where do pirates keep their treasure?")

    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert answer.source == "captain"
    assert answer.content.strip()
    assert answer.models_usage is not None
    assert answer.models_usage.prompt_tokens > 0
    assert 0 < answer.models_usage.completion_tokens <= MAX_TOKENS
    [call] = inner.received
    assert isinstance(call[0], SystemMessage)
    assert call[0].content == prompt_of(client)
    assert call[1] == SystemMessage(content="Answer in one short sentence.")
    assert isinstance(call[-1], UserMessage)
    assert client.model_calls == 1
    await client.close()


@pytest.mark.server
async def test_a_streaming_agent_streams_the_servers_chunks_through(llama_server):
    inner = openai_client(llama_server)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    agent = AssistantAgent("captain", model_client=client, model_client_stream=True)

    events = [e async for e in agent.run_stream(task="Name one sea creature.")]

    chunks = [e for e in events if isinstance(e, ModelClientStreamingChunkEvent)]
    result = events[-1]
    assert isinstance(result, TaskResult)
    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert answer.content.strip()
    assert len(chunks) > 1, "the server's token stream reaches the agent chunk by chunk"
    assert "".join(c.content for c in chunks) == answer.content
    [call] = inner.received
    assert call[0].content == prompt_of(client)


@pytest.mark.server
async def test_a_jekyll_hyde_turn_reports_the_usage_the_inner_client_counted(llama_server):
    inner = openai_client(llama_server)
    client = PersonaChatCompletionClient(
        inner, persona="pirate_captain", ensemble="jekyll_hyde", judge={"retries": 0}
    )

    result = await client.create([UserMessage(content="Name one sea creature.", source="user")])

    assert isinstance(result.content, str) and result.content.strip()
    assert client.model_calls == len(inner.received) >= 2
    assert result.usage == inner.total_usage()
    assert result.usage.completion_tokens > 0
    heads = [call[0] for call in inner.received]
    assert any(isinstance(m, SystemMessage) and m.content == prompt_of(client) for m in heads)
    assert any(isinstance(m, UserMessage) for m in heads), "the neutral candidate has no persona"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_server_raises_the_openai_error_autogen_users_already_handle():
    inner = openai_client(f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")

    with pytest.raises(openai.APIConnectionError):
        await client.create([UserMessage(content="Hello?", source="user")])


@pytest.mark.server
async def test_create_stream_passes_the_openai_clients_own_keywords_on(llama_server):
    inner = openai_client(llama_server)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    messages = [UserMessage(content="Name one sea creature.", source="user")]

    chunks = [c async for c in client.create_stream(messages, include_usage=True)]

    result = chunks[-1]
    assert isinstance(result, CreateResult)
    assert isinstance(result.content, str) and result.content.strip()
    assert "".join(c for c in chunks[:-1] if isinstance(c, str)) == result.content
    [options] = inner.stream_options
    assert options["include_usage"] is True, "the keyword reached the OpenAI client"
    assert client.last_result is not None and client.last_result.text == result.content
    [call] = inner.received
    assert call[0].content == prompt_of(client)

    with pytest.raises(TypeError, match="not_a_keyword"):
        [c async for c in client.create_stream(messages, not_a_keyword=True)]
