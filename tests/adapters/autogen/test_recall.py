"""A client reuses what its previous call translated (an agent sends the same message objects on
every call) only while those messages still hold what they were translated from."""

from __future__ import annotations

from typing import Any

from autogen_core.models import SystemMessage, UserMessage

from persona_plugins.adapters.autogen import PersonaChatCompletionClient

from .doubles import RecordingClient


class TamperingClient(RecordingClient):
    """Records each call's messages as text, then overwrites the text of every message it got
    (a client that edits its input in place)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[str]] = []

    async def create(self, messages: Any, **kwargs: Any) -> Any:
        self.seen.append([m.content for m in messages])
        result = await super().create(messages, **kwargs)
        for message in messages:
            message.content = "tampered"
        return result


def conversation() -> tuple[SystemMessage, UserMessage]:
    return SystemMessage(content="Be brief."), UserMessage(content="Two and two?", source="user")


async def test_the_same_unchanged_messages_are_translated_once():
    # a whole pipeline turn (the guard watching): the pipeline gets the core messages each call
    client = PersonaChatCompletionClient(
        RecordingClient(), persona="chef", guard="monitor", detectors=[]
    )
    system, question = conversation()
    await client.create([system, question])
    first = client.last_result
    await client.create([system, question])
    second = client.last_result
    assert first is not None and second is not None and first is not second
    assert [m.content for m in second.prompt[1:]] == ["Be brief.", "Two and two?"]
    assert all(a is b for a, b in zip(first.prompt, second.prompt, strict=True))


async def test_a_message_changed_between_calls_is_translated_again():
    inner = RecordingClient()
    client = PersonaChatCompletionClient(inner, persona="chef")
    system, question = conversation()
    await client.create([system, question])
    question.content = "Three and three?"
    await client.create([system, question])
    assert client.last_result is not None
    assert client.last_result.prompt[-1].content == "Three and three?"
    question.source = "bob"
    await client.create([system, question])
    assert client.last_result is not None
    assert client.last_result.prompt[-1].name == "bob"
    assert inner.calls[-1]["messages"][-1] is question  # the original itself, as always


async def test_a_persona_message_the_model_changed_is_made_again():
    inner = TamperingClient()
    client = PersonaChatCompletionClient(inner, persona="chef")
    for _ in range(3):
        await client.create(list(conversation()))
    persona_text = client.last_result.system_prompt if client.last_result else None
    assert persona_text
    assert [seen[0] for seen in inner.seen] == [persona_text] * 3
    assert [seen[1:] for seen in inner.seen] == [["Be brief.", "Two and two?"]] * 3


async def test_a_reused_message_the_model_changed_is_translated_again():
    inner = TamperingClient()
    client = PersonaChatCompletionClient(inner, persona="chef")
    system, question = conversation()
    await client.create([system, question])  # the client overwrites both messages' text
    await client.create([system, question])
    assert client.last_result is not None
    assert [m.content for m in client.last_result.prompt[1:]] == ["tampered", "tampered"]
