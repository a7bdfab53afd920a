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
from persona_plugins.adapter_kit import Plain
from persona_plugins.model import Message


class Recall:
    """What one client translated on its previous call, reused on the next while unchanged.

    An agent sends the same message objects again and again (its system message, the earlier
    turns of the conversation), and the persona's system message is the same core object on every
    call while the persona's text is. Each is translated once: an AutoGen message is taken back
    as the core message it became while it is the very same object and still holds the text (and
    speaker) it was translated from; the persona's core system message gives back the AutoGen
    message made from it while that still holds its text. Only the previous call's are kept.
    """

    __slots__ = ("cores", "made")

    def __init__(self) -> None:
        self.cores: dict[int, tuple[LLMMessage, Message]] = {}
        self.made: dict[int, tuple[Message, SystemMessage]] = {}

    def core(self, message: LLMMessage) -> Message | None:
        known = self.cores.get(id(message))
        if known is None or known[0] is not message:
            return None
        core = known[1]
        if message.content != core.content:  # reassigned since: translated again
            return None
        if not isinstance(message, SystemMessage) and (message.source or None) != core.name:
            return None
        return core

    def _made_before(self, message: Message) -> SystemMessage | None:
        """The system message made from ``message`` on the previous call, while it still holds
        that text."""
        known = self.made.get(id(message))
        if known is not None and known[0] is message and known[1].content == message.content:
            return known[1]
        return None

    def head(self, message: Message) -> LLMMessage:
        """The AutoGen form of the persona's system message, the one message a quick call makes
        (see :meth:`made_from`); what was made for it is all that is kept."""
        known = self._made_before(message)
        if known is not None:
            return known
        made: dict[int, tuple[Message, SystemMessage]] = {}
        new = self.made_from(message, made)
        self.made = made
        return new

    def made_from(
        self, message: Message, made: dict[int, tuple[Message, SystemMessage]]
    ) -> LLMMessage:
        """``message`` (not an original) in AutoGen's form: the system message made from it on
        the previous call while that still holds its text, else a new one; noted in ``made``."""
        known = self._made_before(message)
        if known is not None:
            made[id(message)] = (message, known)
            return known
        new = _autogen_message(message)
        if isinstance(new, SystemMessage):
            made[id(message)] = (message, new)
        return new


class Translation(adapter_kit.Translation[LLMMessage]):
    """Core messages for a list of AutoGen messages, and the way back."""

    recall: Recall | None = None  #: the client's memory of its previous call, if it keeps one

    def back(self, messages: Sequence[Message]) -> list[LLMMessage]:
        recall = self.recall
        if recall is None:
            return from_core_messages(messages, self.originals)
        made: dict[int, tuple[Message, SystemMessage]] = {}
        sent = adapter_kit.restore(messages, self.originals, lambda m: recall.made_from(m, made))
        recall.made = made
        return sent


def plain_messages(messages: Sequence[LLMMessage]) -> list[Plain] | None:
    """What :func:`to_core_messages` would read from each message (role, text, speaker), when
    every one is plain text (a system message, or a user or assistant message whose content is a
    string), so that they can be translated later exactly as they are now
    (:class:`~persona_plugins.adapter_kit.LazyPrepared`); None otherwise."""
    plain: list[Plain] = []
    for message in messages:
        kind = type(message)
        content = message.content
        if not isinstance(content, str):  # images, tool calls (or a value set after validation)
            return None
        if kind is SystemMessage:
            plain.append(("system", content, None))
        elif kind is UserMessage and isinstance(message.source, str):
            plain.append(("user", content, message.source or None))
        elif kind is AssistantMessage and isinstance(message.source, str):
            plain.append(("assistant", content, message.source or None))
        else:
            return None
    return plain


def _user_text(content: str | Sequence[object]) -> tuple[str, bool]:
    if isinstance(content, str):
        return content, True
    parts = [
        item if isinstance(item, str) else f"[{type(item).__name__.lower()}]" for item in content
    ]
    return "\n".join(parts), False


def to_core_messages(messages: Sequence[LLMMessage], recall: Recall | None = None) -> Translation:
    """Translate AutoGen messages; ``text_only`` is False when any carries images or tool calls.

    With ``recall`` (one per client), the messages its previous call translated are reused while
    unchanged (see :class:`Recall`), and this call's are remembered for the next.
    """
    out = Translation()
    cores: dict[int, tuple[LLMMessage, Message]] = {}
    add, originals = out.messages.append, out.originals
    for message in messages:
        core = recall.core(message) if recall is not None else None
        if core is None:
            core, plain = _core_message(message)
            if not plain:  # images or tool calls: translated on every call
                out.text_only = False
                add(core)
                originals[id(core)] = message
                continue
        cores[id(message)] = (message, core)
        add(core)
        originals[id(core)] = message
    if recall is not None:
        recall.cores = cores
        out.recall = recall
    return out


def _core_message(message: LLMMessage) -> tuple[Message, bool]:
    """One AutoGen message as a core message, and whether it is plain text."""
    if isinstance(message, SystemMessage):
        return Message(role="system", content=message.content), True
    if isinstance(message, UserMessage):
        text, plain = _user_text(message.content)
        return Message(role="user", content=text, name=message.source or None), plain
    if isinstance(message, AssistantMessage):
        content = message.content
        plain = isinstance(content, str)
        text = content if isinstance(content, str) else function_calls_text(content)
        return Message(role="assistant", content=text, name=message.source or None), plain
    if isinstance(message, FunctionExecutionResultMessage):
        text = "\n".join(r.content for r in message.content)
        return Message(role="tool", content=text), False
    raise TypeError(
        f"unsupported AutoGen message type {type(message).__name__}; expected "
        "SystemMessage, UserMessage, AssistantMessage or FunctionExecutionResultMessage"
    )


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
