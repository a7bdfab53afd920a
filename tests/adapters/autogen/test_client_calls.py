"""The calls AutoGen makes on each of the adapter's clients: AutoGen's own signature (its agents
call by keyword), and ``create_stream`` keywords that belong to the inner client's stream."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from autogen_core.models import ChatCompletionClient, CreateResult, UserMessage
from autogen_core.tools import ToolSchema

from persona_plugins.adapters.autogen import (
    ChatModelCompletionClient,
    PersonaChatCompletionClient,
    TeamGuardClient,
)

from .doubles import EchoModel, RecordingClient

CLIENTS = [PersonaChatCompletionClient, ChatModelCompletionClient, TeamGuardClient]
QUESTION = [UserMessage(content="What is two and two?", source="user")]
ADD = ToolSchema(name="add", description="Add two numbers.")


class StreamOptionsClient(RecordingClient):
    """A recording client whose stream takes keywords of its own (as OpenAI's takes
    ``include_usage``) and records them in ``stream_options``."""

    def __init__(self) -> None:
        super().__init__()
        self.stream_options: list[dict[str, Any]] = []

    def create_stream(self, messages: Any, *, include_usage: bool = False, **kwargs: Any) -> Any:
        self.stream_options.append({"include_usage": include_usage})
        return super().create_stream(messages, **kwargs)


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", ["create", "create_stream"])
def test_each_client_takes_autogens_own_call_signature(client, method):
    theirs = inspect.signature(getattr(ChatCompletionClient, method)).parameters
    ours = inspect.signature(getattr(client, method)).parameters

    for name, parameter in theirs.items():
        assert name in ours, f"{client.__name__}.{method} lacks {name!r}"
        assert ours[name].kind == parameter.kind, f"{name!r} is passed differently"
        assert ours[name].default == parameter.default, f"{name!r} has another default"


@pytest.mark.parametrize(
    ("wrap", "tools"),
    [
        (lambda inner: PersonaChatCompletionClient(inner, persona="pirate_captain"), []),
        # guarded, with a tool: the inner client's own stream, held back for the guard
        (lambda inner: PersonaChatCompletionClient(inner, persona="chef", guard="enforce"), [ADD]),
        (lambda inner: TeamGuardClient(inner, "captain", detectors=[]), []),
    ],
    ids=["persona-only", "guarded-with-a-tool", "team-guard"],
)
async def test_create_stream_hands_the_inner_clients_own_keywords_on(wrap, tools):
    inner = StreamOptionsClient()
    client = wrap(inner)

    chunks = [c async for c in client.create_stream(QUESTION, tools=tools, include_usage=True)]

    assert inner.stream_options == [{"include_usage": True}]
    assert isinstance(chunks[-1], CreateResult)
    assert "".join(chunks[:-1]) == chunks[-1].content == "Aye, two and two make four."


async def test_a_model_client_names_the_stream_keywords_it_has_no_use_for():
    client = ChatModelCompletionClient(EchoModel())

    with pytest.raises(TypeError, match="include_usage"):
        [c async for c in client.create_stream(QUESTION, include_usage=True)]
    chunks = [c async for c in client.create_stream(QUESTION)]
    assert chunks[0] == chunks[-1].content == "What is two and two?"
