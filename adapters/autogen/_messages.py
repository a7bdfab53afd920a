"""Translation between AutoGen ``LLMMessage`` objects and persona-plugins :class:`Message` objects;
messages the pipeline leaves unchanged go back as the very same objects."""

from __future__ import annotations

import json
from collections.abc import Sequence

from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

from persona_plugins import adapter_kit
from persona_plugins.model import Message


class Translation(adapter_kit.Translation[LLMMessage]):
    """Core messages for a list of AutoGen messages, and the way back."""

    def back(self, messages: Sequence[Message]) -> list[LLMMessage]:
        return from_core_messages(messages, self.originals)


def _user_text(content: str | Sequence[object]) -> tuple[str, bool]:
    if isinstance(content, str):
        return content, True
    parts = [
        item if isinstance(item, str) else f"[{type(item).__name__.lower()}]" for item in content
    ]
    return "\n".join(parts), False


def to_core_messages(messages: Sequence[LLMMessage]) -> Translation:
    """Translate AutoGen messages; ``text_only`` is False when any carries images or tool calls."""
    out = Translation()
    for message in messages:
        core: Message
        if isinstance(message, SystemMessage):
            core = Message(role="system", content=message.content)
        elif isinstance(message, UserMessage):
            text, plain = _user_text(message.content)
            out.text_only &= plain
            core = Message(role="user", content=text, name=message.source or None)
        elif isinstance(message, AssistantMessage):
            content = message.content
            out.text_only &= isinstance(content, str)
            text = content if isinstance(content, str) else function_calls_text(content)
            core = Message(role="assistant", content=text, name=message.source or None)
        elif isinstance(message, FunctionExecutionResultMessage):
            out.text_only = False
            core = Message(role="tool", content="\n".join(r.content for r in message.content))
        else:
            raise TypeError(
                f"unsupported AutoGen message type {type(message).__name__}; expected "
                "SystemMessage, UserMessage, AssistantMessage or FunctionExecutionResultMessage"
            )
        out.add(core, message)
    return out


def from_core_messages(
    messages: Sequence[Message], originals: dict[int, LLMMessage] | None = None
) -> list[LLMMessage]:
    """Translate core messages back; unchanged ones become their AutoGen originals again."""
    return adapter_kit.restore(messages, originals, _autogen_message)


def _autogen_message(message: Message) -> LLMMessage:
    if message.role == "system":
        return SystemMessage(content=message.content)
    if message.role == "assistant":
        return AssistantMessage(content=message.content, source=message.name or "assistant")
    return UserMessage(content=message.content, source=message.name or message.role)


def function_calls_text(content: list[FunctionCall]) -> str:
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in content])
