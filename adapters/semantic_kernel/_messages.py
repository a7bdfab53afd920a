"""Translation between Semantic Kernel chat messages and persona-plugins :class:`Message` objects
(unchanged messages go back as their SK originals), and SK's rendered-prompt format, escaped so
that no text can close its message and open another (the README's *Escaping*)."""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any
from xml.etree.ElementTree import Element, tostring

from semantic_kernel.contents.chat_message_content import ChatMessageContent
from semantic_kernel.contents.const import CHAT_MESSAGE_CONTENT_TAG
from semantic_kernel.contents.function_call_content import FunctionCallContent
from semantic_kernel.contents.function_result_content import FunctionResultContent
from semantic_kernel.contents.text_content import TextContent
from semantic_kernel.contents.utils.author_role import AuthorRole
from semantic_kernel.contents.utils.finish_reason import FinishReason

from persona_plugins.adapter_kit import Plain, Translation, restore
from persona_plugins.model import Message, Role

_CORE_ROLE: dict[AuthorRole, Role] = {
    AuthorRole.SYSTEM: "system",
    AuthorRole.DEVELOPER: "system",
    AuthorRole.USER: "user",
    AuthorRole.ASSISTANT: "assistant",
    AuthorRole.TOOL: "tool",
}


def _item_text(item: Any) -> str:
    if isinstance(item, TextContent):
        return item.text
    if isinstance(item, FunctionCallContent):
        arguments = item.arguments
        if isinstance(arguments, str):
            with contextlib.suppress(ValueError):
                arguments = json.loads(arguments) if arguments else {}
        return json.dumps({"name": item.name, "arguments": arguments}, default=str)
    if isinstance(item, FunctionResultContent):
        return str(item.result)
    return f"[{type(item).__name__.removesuffix('Content').lower()}]"


def message_text(message: ChatMessageContent) -> tuple[str, bool]:
    """The text of an SK message, and whether it is text only (no images, calls or results)."""
    items = message.items
    if len(items) == 1 and type(items[0]) is TextContent:  # the common case, fast
        return items[0].text, True
    plain = all(isinstance(item, TextContent) for item in items)
    return "\n".join(_item_text(item) for item in items), plain


def to_core_messages(messages: Iterable[ChatMessageContent]) -> Translation[ChatMessageContent]:
    """Translate SK messages; ``text_only`` is False when any carries non-text content."""
    out: Translation[ChatMessageContent] = Translation()
    for message in messages:
        text, plain = message_text(message)
        core = Message(role=_CORE_ROLE.get(message.role, "user"), content=text, name=message.name)
        out.add(core, message, plain=plain)
    return out


def plain_messages(messages: Sequence[ChatMessageContent]) -> list[Plain] | None:
    """What :func:`to_core_messages` would read from each message, when every one is plain text
    (one text item, a string name or none), so that they can be translated later
    (:class:`~persona_plugins.adapter_kit.LazyPrepared`) exactly as they are now; None otherwise."""
    plain: list[Plain] = []
    for message in messages:
        items, name = message.items, message.name
        if len(items) != 1 or type(items[0]) is not TextContent:
            return None
        text = items[0].text
        if type(text) is not str or not (name is None or type(name) is str):
            return None  # not what the usual path accepts: it says so
        plain.append((_CORE_ROLE.get(message.role, "user"), text, name))
    return plain


def sk_message(message: Message, instruction_role: str = "system") -> ChatMessageContent:
    """A core message as a new SK message; a system message takes ``instruction_role``."""
    role = AuthorRole(instruction_role if message.role == "system" else message.role)
    return ChatMessageContent(role=role, content=message.content, name=message.name)


def from_core_messages(
    messages: Sequence[Message],
    originals: dict[int, ChatMessageContent] | None = None,
    *,
    instruction_role: str = "system",
) -> list[ChatMessageContent]:
    """Translate core messages back; unchanged ones become their SK originals again, new system
    messages (the persona) take ``instruction_role``."""
    return restore(messages, originals, lambda message: sk_message(message, instruction_role))


def finish_reason(value: str | None) -> FinishReason | None:
    """Map a model's finish reason onto SK's enum (None when SK has no such reason)."""
    if not value:
        return None
    try:
        return FinishReason(value)
    except ValueError:
        return None


# Characters XML 1.0 cannot carry (and ``\r``, which XML parsers turn into ``\n``).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff\r]")


def _character_reference(match: re.Match[str]) -> str:
    char = match.group()
    reference = f"&#{ord(char)};"
    # SK's HTML unescaping restores some of them (``\r``, form feed); the rest cannot travel in
    # a rendered prompt at all and become U+FFFD, as a decoder writes an undecodable byte.
    return reference if html.unescape(reference) == char else "\ufffd"


def _attribute_char(match: re.Match[str]) -> str:
    return "\r" if match.group() == "\r" else "\ufffd"  # ElementTree writes \r as &#13;


def escape_prompt_text(text: str) -> str:
    """Escape text for the inside of a ``<message>`` tag of an SK rendered prompt: SK reads it
    twice (XML, then HTML unescaping), so it is escaped here once and by :func:`render_prompt`'s
    XML writer again. Characters XML cannot carry come back as U+FFFD (the README's *Escaping*).
    """
    return _NOT_XML.sub(_character_reference, html.escape(text, quote=False))


def render_message(role: str, text: str, name: str | None = None) -> str:
    """One ``<message role="...">`` tag of an SK rendered prompt, its text escaped."""
    element = Element(CHAT_MESSAGE_CONTENT_TAG, {"role": role})
    if name:
        element.set("name", _NOT_XML.sub(_attribute_char, name))
    element.text = escape_prompt_text(text)
    return tostring(element, encoding="unicode", short_empty_elements=False)


def render_prompt(
    messages: Sequence[Message],
    originals: dict[int, ChatMessageContent] | None = None,
    *,
    instruction_role: str = "system",
) -> str:
    """Core messages as an SK rendered prompt that ``ChatHistory.from_rendered_prompt`` reads
    back into the same messages (text escaped; non-text originals written by SK itself)."""
    parts: list[str] = []
    for message in from_core_messages(messages, originals, instruction_role=instruction_role):
        text, plain = message_text(message)
        parts.append(
            render_message(message.role.value, text, message.name) if plain else message.to_prompt()
        )
    return "".join(parts)
