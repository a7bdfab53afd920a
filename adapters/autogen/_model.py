"""Conversions between AutoGen clients and persona-plugins chat models."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken, Component
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel
from typing_extensions import Self

from persona_plugins.adapter_kit import (
    Tally,
    close_model,
    estimate_tokens,
    model_config,
    model_from_config,
    require_chat_model,
    usage_from,
)
from persona_plugins.adapters.autogen._base import Call, CompletionClient
from persona_plugins.adapters.autogen._messages import (
    from_core_messages,
    function_calls_text,
    to_core_messages,
)
from persona_plugins.config import flatten_generation_settings, nest_generation_settings
from persona_plugins.model import ChatModel, Completion, Message, Usage

_FINISH_REASONS = {"stop", "length", "function_calls", "content_filter", "unknown"}


def finish_reason(
    value: str | None,
) -> Literal["stop", "length", "function_calls", "content_filter", "unknown"]:
    """Map a model's finish reason onto AutoGen's fixed set."""
    if value is None:
        return "stop"
    if value == "tool_calls":
        return "function_calls"
    return value if value in _FINISH_REASONS else "unknown"  # type: ignore[return-value]


def request_usage(usage: Usage) -> RequestUsage:
    """persona-plugins usage as AutoGen's usage record."""
    return RequestUsage(prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens)


def text_result(text: str, usage: Usage, reason: str | None) -> CreateResult:
    """A text reply as AutoGen's ``CreateResult``."""
    return CreateResult(
        finish_reason=finish_reason(reason), content=text, usage=request_usage(usage), cached=False
    )


def client_model_name(client: ChatCompletionClient) -> str:
    """The model name an AutoGen client was created for, as well as it can be told."""
    for attr in ("_create_args", "_raw_config"):
        value = getattr(client, attr, None)
        if isinstance(value, Mapping) and isinstance(value.get("model"), str):
            return str(value["model"])
    name = getattr(client, "model_name", None)
    if isinstance(name, str):
        return name
    try:
        return str(client.model_info.get("family", type(client).__name__))
    except Exception:
        return type(client).__name__


class AutoGenChatModel:
    """A persona-plugins :class:`~persona_plugins.ChatModel` backed by any AutoGen client.

    ``originals`` (AutoGen originals of core messages), ``cancellation_token`` and
    ``extra_create_args`` are passed to every call; the adapter sets them.
    """

    provider_name = "autogen"

    def __init__(
        self,
        client: ChatCompletionClient,
        *,
        originals: dict[int, LLMMessage] | None = None,
        cancellation_token: CancellationToken | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        model_name: str | None = None,
    ):
        self.client = client
        self.model_name = model_name or client_model_name(client)
        self._originals = originals or {}
        self._token = cancellation_token
        self._extra = dict(extra_create_args or {})

    @property
    def supports_multiple_system_messages(self) -> bool:
        try:
            value = self.client.model_info.get("multiple_system_messages")
        except Exception:
            return True
        return value is not False

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        if self._token is not None and self._token.is_cancelled():
            raise asyncio.CancelledError("the AutoGen cancellation token was cancelled")
        result = await self.client.create(
            from_core_messages(messages, self._originals),
            extra_create_args={**self._extra, **flatten_generation_settings(settings)},
            cancellation_token=self._token,
        )
        text = (
            result.content
            if isinstance(result.content, str)
            else function_calls_text(result.content)
        )
        # Validating these few strings is quicker than model_construct (pydantic 2.x).
        return Completion(
            text=text,
            usage=usage_from(result.usage),
            finish_reason=result.finish_reason,
            model=self.model_name,
        )


class ChatModelCompletionClientConfig(BaseModel):
    """Serialized form of :class:`ChatModelCompletionClient` (built-in model kinds only)."""

    kind: Literal["llama_cpp", "openai_compatible"]
    options: dict[str, Any] = {}
    model_info: dict[str, Any] | None = None


class ChatModelCompletionClient(CompletionClient, Component[ChatModelCompletionClientConfig]):
    """An AutoGen ``ChatCompletionClient`` backed by any persona-plugins chat model (text only:
    no tools, no vision), so ``AssistantAgent`` and teams run on the embedded model.

    Args:
        model: the chat model.
        model_info: AutoGen model info (default: text-only, from the model's attributes).
        context_window: tokens, for ``remaining_tokens`` (default: the model's ``n_ctx`` or 2048).

    Raises:
        TypeError: when ``model`` has no ``complete``; ``create`` raises ValueError for tools or
        non-text messages.
    """

    component_config_schema = ChatModelCompletionClientConfig
    component_provider_override = "persona_plugins.adapters.autogen.ChatModelCompletionClient"

    def __init__(
        self,
        model: ChatModel,
        *,
        model_info: ModelInfo | None = None,
        context_window: int | None = None,
    ):
        require_chat_model(model)
        self.model = model
        self._model_info: ModelInfo = model_info or ModelInfo(
            vision=False,
            function_calling=False,
            json_output=False,
            family=str(getattr(model, "model_name", "unknown")),
            structured_output=False,
            multiple_system_messages=bool(
                getattr(model, "supports_multiple_system_messages", True)
            ),
        )
        self._context_window = context_window or int(getattr(model, "n_ctx", 2048))
        self._tally = Tally()

    async def _create(self, call: Call) -> CreateResult:
        if call.tools:
            raise ValueError(
                f"{type(self.model).__name__} has no tool calling; give the agent a model whose "
                "client supports function calling, or no tools"
            )
        translation = to_core_messages(call.messages)
        if not translation.text_only:
            raise ValueError(
                f"{type(self.model).__name__} takes text only; this conversation has images or "
                "function-call messages"
            )
        # AutoGen passes flat keyword arguments; names the core does not know travel as `extra`.
        settings = nest_generation_settings(call.extra_create_args)
        future = asyncio.ensure_future(self.model.complete(translation.messages, **settings))
        if call.cancellation_token is not None:
            call.cancellation_token.link_future(future)
        completion = await future
        self._tally.add(completion.usage)
        return text_result(completion.text, completion.usage, completion.finish_reason)

    async def close(self) -> None:
        await close_model(self.model)

    def actual_usage(self) -> RequestUsage:
        return self.total_usage()  # nothing is cached: actual equals total

    def total_usage(self) -> RequestUsage:
        return request_usage(self._tally.usage)

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        # An estimate: exact counts need the model's tokenizer.
        return estimate_tokens(m.content for m in to_core_messages(messages).messages)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return max(0, self._context_window - self.count_tokens(messages, tools=tools))

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    def _to_config(self) -> ChatModelCompletionClientConfig:
        kind, options = model_config(self.model)
        return ChatModelCompletionClientConfig(
            kind=kind,  # type: ignore[arg-type]
            options=options,
            model_info=dict(self._model_info),
        )

    @classmethod
    def _from_config(cls, config: ChatModelCompletionClientConfig) -> Self:
        info = ModelInfo(**config.model_info) if config.model_info else None  # type: ignore[typeddict-item]
        return cls(model_from_config(config.kind, config.options), model_info=info)


def embedded_model_client(
    model_path: str | None = None, **options: Any
) -> ChatModelCompletionClient:
    """An AutoGen client on the embedded SmolLM2 model (or another GGUF file); needs the
    ``autogen`` and ``local`` extras."""
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    return ChatModelCompletionClient(LlamaCppChatModel(model_path, **options))
