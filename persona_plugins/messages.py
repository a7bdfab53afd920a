"""The conversation as the core reads it: what callers may pass, and the last thing the user said.

Every entry point (:meth:`~persona_plugins.PersonaPipeline.run`, ``prepare``, ``guard`` ...)
turns its input into a list of :class:`~persona_plugins.Message` with :func:`normalize_messages`,
and every stage that needs "the question" reads it with :func:`last_user_text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from persona_plugins.errors import MessageError
from persona_plugins.model import Message

__all__ = ["MessagesInput", "last_user_text", "normalize_messages", "optional_messages"]

#: What a caller may pass as a conversation: one user message as text, or a sequence of
#: :class:`Message` objects and ``{"role", "content"}`` mappings.
MessagesInput = str | Sequence[Message | Mapping[str, Any]]


def normalize_messages(messages: MessagesInput) -> list[Message]:
    """Accept a string (one user message), :class:`Message` objects or ``{"role", "content"}``
    mappings; raise :class:`MessageError` naming the message at fault.

    :class:`Message` objects are kept as they are (the very objects), so adapters can tell which
    messages a stage left unchanged.

    >>> normalize_messages("Hi") == [Message.user("Hi")]
    True
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise MessageError("the message is empty; pass the user's question as text")
        return [Message.user(messages)]
    if type(messages) is list and all(type(item) is Message for item in messages) and messages:
        return list(messages)  # already the core's type: nothing to check or convert
    if not isinstance(messages, Iterable) or isinstance(messages, (bytes, Mapping)):
        raise MessageError(
            f"messages must be a string or a list of messages, not {type(messages).__name__}"
        )
    out: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise MessageError(
                f"messages[{index}] is a {type(item).__name__}; expected a Message or a mapping "
                "with 'role' and 'content'"
            )
        try:
            out.append(Message.model_validate(dict(item)))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(message)"
            raise MessageError(f"messages[{index}].{field}: {first['msg']}") from None
    if not out:
        raise MessageError("messages is empty; a turn needs at least one message")
    return out


def optional_messages(messages: MessagesInput | None) -> list[Message]:
    """:func:`normalize_messages`, with None meaning no conversation (text checked on its own)."""
    return [] if messages is None else normalize_messages(messages)


def last_user_text(messages: Sequence[Any], *, or_last: bool = False) -> str:
    """The text of the last ``user`` message.

    With no user message: the last message's text when ``or_last`` is true, else ``""``.
    Malformed input (not a sequence, messages without text) gives ``""``, never an exception,
    because guardrail detectors call this on whatever they are given.

    >>> last_user_text([Message.user("Hi"), Message.assistant("Hello!")])
    'Hi'
    >>> last_user_text([Message.system("Be brief.")], or_last=True)
    'Be brief.'
    """
    try:
        items = list(messages or ())
    except TypeError:
        return ""
    for message in reversed(items):
        if getattr(message, "role", None) == "user":
            content = getattr(message, "content", "")
            return content if isinstance(content, str) else ""
    if or_last and items:
        content = getattr(items[-1], "content", "")
        return content if isinstance(content, str) else ""
    return ""
