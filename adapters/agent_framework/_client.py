"""Agent Framework messages and chat clients as persona-plugins messages and chat models, and back.

An Agent Framework client takes the system prompt as ``options["instructions"]`` and puts it first;
in core messages the instructions are leading system messages that are not any framework message's
translation, so the persona the pipeline puts at the head goes back into the instructions position.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from agent_framework import (
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
)
from agent_framework.observability import ChatTelemetryLayer

from persona_plugins import adapter_kit
from persona_plugins.adapter_kit import close_model, require_chat_model
from persona_plugins.config import (
    GENERATION_SETTINGS,
    flatten_generation_settings,
    nest_generation_settings,
)
from persona_plugins.model import ChatModel, Completion, Usage
from persona_plugins.model import Message as CoreMessage
from persona_plugins.turn_model import model_name

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_LAYERS = (FunctionInvocationLayer, ChatMiddlewareLayer, ChatTelemetryLayer)
#: Options of the agent's own call only: the pipeline's extra calls (candidates, judge, reviewers,
#: regeneration) use no tools, ask for text, and stay out of a server-side conversation.
AGENT_CALL_OPTIONS = frozenset(
    {"tools", "tool_choice", "allow_multiple_tool_calls", "response_format", "conversation_id"}
)


class Translation(adapter_kit.Translation[Message]):
    """Core messages for a framework call (its instructions first), and the way back."""

    def back(self, messages: Sequence[CoreMessage]) -> tuple[list[str], list[Message]]:
        """``(instructions, messages)``: the leading system messages that are no framework
        message's translation are instructions, the rest framework messages (the originals of
        unchanged ones)."""
        head = 0
        while (
            head < len(messages)
            and messages[head].role == "system"
            and id(messages[head]) not in self.originals
        ):
            head += 1
        instructions = [m.content for m in messages[:head]]
        return instructions, adapter_kit.restore(messages[head:], self.originals, framework_message)


def instruction_parts(value: Any) -> tuple[list[str], list[Any]]:
    """An ``instructions`` option as ``(texts, others)``: the text parts, and any provider-native
    structured parts, which are kept after the texts as they are."""
    if value is None:
        return [], []
    parts = [value] if isinstance(value, (str, Mapping)) else list(value)
    texts = [p for p in parts if isinstance(p, str) and p.strip()]
    return texts, [p for p in parts if not isinstance(p, str)]


def with_instructions(options: Mapping[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    """A new ``options`` dict whose instructions are ``texts``, in the shape the caller gave: a
    list for a list, else one string (joined with a newline, as the framework joins
    instructions); provider-native structured parts are kept after the texts."""
    original = options.get("instructions")
    others = instruction_parts(original)[1]
    listed = others or isinstance(original, (list, tuple))
    value = [*texts, *others] if listed else "\n".join(texts)
    new = {key: item for key, item in options.items() if key != "instructions"}
    if value:
        new["instructions"] = value
    return new


def to_core_messages(messages: Sequence[Message], instructions: Any = None) -> Translation:
    """Translate a call's messages, its instructions first; ``text_only`` is False when any
    message carries something other than text (a tool call or result, an image)."""
    out = Translation()
    for text in instruction_parts(instructions)[0]:
        out.messages.append(CoreMessage(role="system", content=text))
    for message in messages:
        role = message.role if message.role in _ROLES else "user"
        core = CoreMessage(role=role, content=message.text, name=message.author_name)
        out.add(core, message, plain=all(c.type == "text" for c in message.contents))
    return out


def framework_message(message: CoreMessage) -> Message:
    return Message(message.role, [message.content], author_name=message.name)


def usage_of(details: Mapping[str, Any] | None) -> Usage:
    details = details or {}
    return Usage(
        input_tokens=details.get("input_token_count") or 0,
        output_tokens=details.get("output_token_count") or 0,
    )


def usage_details(usage: Usage) -> dict[str, int]:
    return {
        "input_token_count": usage.input_tokens,
        "output_token_count": usage.output_tokens,
        "total_token_count": usage.total_tokens,
    }


def text_response(text: str, usage: Usage, finish_reason: str | None, model: str | None) -> Any:
    return ChatResponse(
        messages=[Message("assistant", [text])],
        usage_details=usage_details(usage),  # type: ignore[arg-type]
        finish_reason=finish_reason or "stop",  # type: ignore[arg-type]
        model=model,
    )


def streamed(updates: Sequence[Any], final: Any) -> ResponseStream[Any, Any]:
    """A stream that replays ``updates`` and finishes as ``final``."""

    async def replay() -> AsyncIterator[Any]:
        for update in updates:
            yield update

    return ResponseStream(replay(), finalizer=lambda _: final)


def streamed_text(response: Any) -> ResponseStream[Any, Any]:
    """A finished text response as a stream of word-sized updates (adapter_kit.text_chunks)."""
    updates = [
        ChatResponseUpdate(role="assistant", contents=[Content.from_text(piece)])
        for piece in adapter_kit.text_chunks(response.text)
    ]
    return streamed(updates, response)


def beneath_layers(client: Any) -> Any:
    """The client's ``get_response`` beneath its function-invocation, middleware and telemetry
    layers: no tool loop, no middleware, no framework ``chat`` span (the pipeline traces the
    calls it makes itself, so none is traced twice)."""
    lowest = _lowest_layer(type(client))
    return client.get_response if lowest is None else super(lowest, client).get_response


@functools.cache
def _lowest_layer(cls: type) -> type | None:
    mro = cls.__mro__
    return max((layer for layer in _LAYERS if layer in mro), key=mro.index, default=None)


class AgentFrameworkChatModel:
    """Any Agent Framework chat client as a persona-plugins :class:`~persona_plugins.ChatModel`,
    so :class:`~persona_plugins.PersonaPipeline`, ``eval`` and ``audit`` run on it.

    Leading system messages become the call's ``instructions``; generation settings become chat
    options. Calls go to the client beneath its layers (no tool loop, no middleware, no framework
    ``chat`` span: the pipeline's own ``chat`` span records each call once).

    Args:
        client: the Agent Framework chat client.
        options: chat options for every call (less those of :data:`AGENT_CALL_OPTIONS`).
        originals: framework originals of core messages (set by the middleware).
        model_name: the name recorded on spans (default: the client's ``model``).
    """

    provider_name = "agent_framework"
    supports_multiple_system_messages = True

    def __init__(
        self,
        client: Any,
        *,
        options: Mapping[str, Any] | None = None,
        originals: Translation | None = None,
        model_name: str | None = None,
    ):
        if not callable(getattr(client, "get_response", None)):
            raise TypeError(
                f"client must be an Agent Framework chat client, got {type(client).__name__}"
            )
        self.client = client
        self.model_name = model_name or str(getattr(client, "model", None) or type(client).__name__)
        self._options = {k: v for k, v in (options or {}).items() if k not in AGENT_CALL_OPTIONS}
        self._translation = originals or Translation()
        self._get_response = beneath_layers(client)

    async def complete(self, messages: Sequence[CoreMessage], **settings: Any) -> Completion:
        instructions, sent = self._translation.back(messages)
        options = with_instructions(self._options, instructions)
        options.update(flatten_generation_settings(settings))
        response = await self._get_response(sent, stream=False, options=options)
        return Completion(
            text=response.text,
            usage=usage_of(response.usage_details),
            finish_reason=str(response.finish_reason) if response.finish_reason else None,
            model=response.model or self.model_name,
        )


class ChatModelChatClient(
    FunctionInvocationLayer[Any], ChatMiddlewareLayer[Any], ChatTelemetryLayer[Any], BaseChatClient
):
    """An Agent Framework chat client backed by any persona-plugins chat model (text only: no
    tools, no images), stacked like the shipped clients (tool loop, middleware, telemetry), so
    ``Agent`` and workflows run on the embedded model.

    The instructions come first, as system messages; generation options (``max_tokens``,
    ``temperature``, ...) become the model's settings. ``model`` is the model's *name* (the
    ``Agent`` reads it as the model id); the model itself is ``chat_model``.

    Args:
        model: the chat model.
        middleware: client-level middleware, as for any Agent Framework client.

    Raises:
        TypeError: when ``model`` has no ``complete``; a call raises ValueError for tools or
        messages that are not text.
    """

    OTEL_PROVIDER_NAME = "persona_plugins"

    def __init__(self, model: ChatModel, *, middleware: Sequence[Any] | None = None, **kwargs: Any):
        require_chat_model(model)
        super().__init__(middleware=middleware, **kwargs)
        self.chat_model = model
        self.model = model_name(model)

    def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Mapping[str, Any], **_: Any
    ) -> Any:
        if options.get("tools"):
            raise ValueError(
                f"{type(self.chat_model).__name__} has no tool calling; give the agent a client "
                "that supports function calling, or no tools"
            )
        translation = to_core_messages(messages, options.get("instructions"))
        if not translation.text_only:
            raise ValueError(
                f"{type(self.chat_model).__name__} takes text only; this conversation has "
                "function calls, function results or media"
            )
        known = {k: v for k, v in options.items() if k in GENERATION_SETTINGS or k == "extra"}

        async def respond() -> Any:
            done = await self.chat_model.complete(
                translation.messages, **nest_generation_settings(known)
            )
            return text_response(done.text, done.usage, done.finish_reason, done.model)

        if not stream:
            return respond()

        async def updates() -> AsyncIterator[Any]:
            response = await respond()
            for update in response.messages[0].contents:
                yield ChatResponseUpdate(role="assistant", contents=[update])
            usage = Content.from_usage(usage_details=response.usage_details)
            yield ChatResponseUpdate(role="assistant", contents=[usage], finish_reason="stop")

        return self._build_response_stream(updates())

    async def close(self) -> None:
        await close_model(self.chat_model)


def embedded_chat_client(model_path: str | None = None, **options: Any) -> ChatModelChatClient:
    """An Agent Framework chat client on the embedded SmolLM2 model (or another GGUF file);
    needs the ``agent-framework`` and ``local`` extras."""
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    return ChatModelChatClient(LlamaCppChatModel(model_path, **options))
