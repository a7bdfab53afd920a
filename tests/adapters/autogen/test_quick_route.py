"""A persona-only call with nothing recording goes to the inner client with no turn machinery
(``PersonaChatCompletionClient._quick``): it must send, count and describe exactly what the usual
path does, and step aside as soon as a plugin, the config or a tracer asks for more."""

from __future__ import annotations

from typing import Any

import pytest
from autogen_core import FunctionCall
from autogen_core.models import AssistantMessage, CreateResult, SystemMessage, UserMessage
from autogen_core.tools import FunctionTool

from persona_plugins import MessageError, PersonaChoice, TurnResult, hookimpl
from persona_plugins.adapters.autogen import PersonaChatCompletionClient
from persona_plugins.adapters.autogen._base import Call
from persona_plugins.persona import Persona
from tests.core.doubles import registered

from .doubles import SINGLE_SYSTEM_MESSAGE, RecordingClient

TOOL_CALL = CreateResult(
    finish_reason="function_calls",
    content=[FunctionCall(id="1", name="get_weather", arguments='{"city": "Oslo"}')],
    usage={"prompt_tokens": 7, "completion_tokens": 3},
    cached=False,
)


def get_weather(city: str) -> str:
    return f"Rain in {city}."


CONVERSATIONS = {
    "user only": lambda: [UserMessage(content="What is 2 + 2?", source="user")],
    "system led": lambda: [
        SystemMessage(content="Be brief."),
        UserMessage(content="What is 2 + 2?", source="ann"),
    ],
    "earlier turns": lambda: [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hello.", source="user"),
        AssistantMessage(content="Hello, friend.", source="helper"),
        UserMessage(content="What is 2 + 2?", source="user"),
    ],
}


def texts(messages: list[Any]) -> list[tuple[str, str, Any]]:
    return [(type(m).__name__, m.content, getattr(m, "source", None)) for m in messages]


def described(turn: TurnResult | None) -> dict[str, Any]:
    assert turn is not None
    return turn.model_dump(exclude={"duration_s"})


@pytest.mark.parametrize("name", CONVERSATIONS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool call"])
async def test_a_persona_only_call_sends_counts_and_describes_what_the_usual_path_does(
    name, tools, monkeypatch
):
    replies = [TOOL_CALL] if tools else ["Four."]
    quick_inner, usual_inner = RecordingClient(replies), RecordingClient(replies)
    quick = PersonaChatCompletionClient(quick_inner, persona="chef")
    usual = PersonaChatCompletionClient(usual_inner, persona="chef")
    monkeypatch.setattr(usual, "_quick", lambda call: None)  # the usual path, forced
    tool = [FunctionTool(get_weather, description="The weather in a city.")] if tools else []
    for client in (quick, usual):
        for _ in range(2):
            messages = CONVERSATIONS[name]()
            await client.create(messages, tools=tool)
            sent = client.inner.calls[-1]["messages"]
            originals = zip(sent[1:], messages, strict=True)
            assert sent[1:] == messages and all(a is b for a, b in originals)
    assert quick._quick(Call(messages, tool, "auto", None, {}, None, {})) is not None
    assert texts(quick_inner.calls[-1]["messages"]) == texts(usual_inner.calls[-1]["messages"])
    assert quick_inner.calls[-1]["tools"] == usual_inner.calls[-1]["tools"]
    assert described(quick.last_result) == described(usual.last_result)
    assert quick.model_calls == usual.model_calls == 2
    assert quick.total_usage() == usual.total_usage()


async def test_a_plugin_watching_turns_registered_after_the_client_was_built_sees_the_next_call(
    plugin_manager,
):
    seen: list[str] = []

    class Watcher:
        @hookimpl
        def on_turn_complete(self, result):
            seen.append(result.text)

    client = PersonaChatCompletionClient(
        RecordingClient(["Four."]), persona="chef", plugin_manager=plugin_manager
    )
    await client.create(CONVERSATIONS["user only"]())
    with registered(plugin_manager, Watcher()):
        await client.create(CONVERSATIONS["user only"]())
    await client.create(CONVERSATIONS["user only"]())
    assert seen == ["Four."]


async def test_a_persona_hook_registered_after_the_client_was_built_is_called_on_the_next_call(
    plugin_manager,
):
    class Writer:
        @hookimpl
        def persona_system_prompt(self):
            return "You are a plugin's persona."

    inner = RecordingClient(["Four."])
    client = PersonaChatCompletionClient(inner, persona="chef", plugin_manager=plugin_manager)
    await client.create(CONVERSATIONS["user only"]())
    with registered(plugin_manager, Writer()):
        await client.create(CONVERSATIONS["user only"]())
    await client.create(CONVERSATIONS["user only"]())
    heads = [call["messages"][0].content for call in inner.calls]
    assert heads[1] == "You are a plugin's persona."
    assert heads[0] == heads[2] != heads[1]
    assert client.last_result is not None and client.last_result.system_prompt == heads[2]


async def test_a_config_changed_after_the_client_was_built_is_followed_on_the_next_call():
    inner = RecordingClient(["Four."])
    client = PersonaChatCompletionClient(inner, persona="chef")
    await client.create(CONVERSATIONS["user only"]())
    client.pipeline.config.persona_template = "roleplay"
    await client.create(CONVERSATIONS["user only"]())
    client.pipeline.config.persona_mode = "none"
    await client.create(CONVERSATIONS["user only"]())
    first, second, third = (call["messages"] for call in inner.calls)
    assert first[0].content.startswith("You are ")
    assert second[0].content.startswith("This conversation is a role-play.")
    assert texts(third) == texts(CONVERSATIONS["user only"]())
    assert client.last_result is not None and client.last_result.persona is None


async def test_a_model_taking_one_system_message_gets_the_persona_merged_into_it():
    inner = RecordingClient(["Four."], model_info=SINGLE_SYSTEM_MESSAGE)
    client = PersonaChatCompletionClient(inner, persona="chef")
    await client.create(CONVERSATIONS["system led"]())
    sent = inner.calls[-1]["messages"]
    assert [type(m).__name__ for m in sent] == ["SystemMessage", "UserMessage"]
    assert sent[0].content.endswith("\n\nBe brief.") and sent[0].content.startswith("You are ")


async def test_a_persona_plugin_choosing_per_call_is_asked_on_every_call(plugin_manager):
    asked: list[str] = []
    pirate = Persona(name="pirate", description="a pirate")

    class Chooser:
        @hookimpl
        def select_persona(self, messages):
            asked.append(messages[-1].content)
            return PersonaChoice(persona=pirate, source="plugin")

    inner = RecordingClient(["Arr."])
    client = PersonaChatCompletionClient(inner, persona="chef", plugin_manager=plugin_manager)
    with registered(plugin_manager, Chooser()):
        for _ in range(2):
            await client.create(CONVERSATIONS["user only"]())
    assert asked == ["What is 2 + 2?"] * 2
    assert all(call["messages"][0].content == "You are a pirate." for call in inner.calls)


async def test_an_empty_conversation_is_refused_as_on_the_usual_path():
    client = PersonaChatCompletionClient(RecordingClient(["Four."]), persona="chef")

    with pytest.raises(MessageError, match="empty"):
        await client.create([])
    assert client.inner.calls == []


async def test_messages_given_as_a_one_shot_iterable_all_reach_the_model():
    client = PersonaChatCompletionClient(RecordingClient(["Four."]), persona="chef")
    conversation = CONVERSATIONS["system led"]()

    await client.create(message for message in conversation)

    assert client.inner.calls[-1]["messages"][1:] == conversation
    assert [m.content for m in client.last_result.prompt][1:] == ["Be brief.", "What is 2 + 2?"]


async def test_a_message_edited_to_a_value_autogen_would_not_accept_takes_the_usual_path():
    # AutoGen does not validate assignments: the usual path's translation refuses such a value
    # before the model is called, and the quick route must not send it and fail later.
    client = PersonaChatCompletionClient(RecordingClient(["Four."]), persona="chef")
    message = UserMessage(content="What is 2 + 2?", source="user")
    message.source = 123  # type: ignore[assignment]

    with pytest.raises(ValueError, match="name"):  # the speaker is the core message's name
        await client.create([message])
    assert client.inner.calls == []


async def test_a_replaced_inner_client_decides_how_the_persona_is_placed():
    client = PersonaChatCompletionClient(RecordingClient(["Four."]), persona="chef")
    client.inner = RecordingClient(["Four."], model_info=SINGLE_SYSTEM_MESSAGE)

    await client.create(CONVERSATIONS["system led"]())

    sent = client.inner.calls[-1]["messages"]
    assert [type(m).__name__ for m in sent] == ["SystemMessage", "UserMessage"]
    assert sent[0].content.endswith("Be brief.")
