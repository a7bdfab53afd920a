"""What the adapter's AutoGen clients share: the ``create`` / ``create_stream`` signature of
AutoGen's ``ChatCompletionClient``, written once, and the members a client around another client
hands to it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from persona_plugins.adapter_kit import held_until_final

Stream = AsyncGenerator[str | CreateResult, None]


@dataclass(slots=True)
class Call:
    """One ``create`` or ``create_stream`` call as AutoGen made it; ``stream_options`` are the
    extra keyword arguments of ``create_stream``, which belong to the inner client's stream
    (``include_usage=True`` for an OpenAI client)."""

    messages: Sequence[LLMMessage]
    tools: Sequence[Tool | ToolSchema]
    tool_choice: Tool | Literal["auto", "required", "none"]
    json_output: bool | type[BaseModel] | None
    extra_create_args: Mapping[str, Any]
    cancellation_token: CancellationToken | None
    stream_options: Mapping[str, Any]

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of this call for another client's ``create`` (a new dict); its
        ``create_stream`` takes ``stream_options`` as well."""
        return {
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "json_output": self.json_output,
            "extra_create_args": self.extra_create_args,
            "cancellation_token": self.cancellation_token,
        }


class CompletionClient(ChatCompletionClient):
    """An AutoGen model client that answers a :class:`Call`: a subclass writes :meth:`_create`,
    and :meth:`_stream` unless it streams the whole reply at once."""

    component_type = "model"

    @property
    def capabilities(self) -> ModelCapabilities:
        """What ``model_info`` says (AutoGen keeps ``capabilities`` for older callers)."""
        info = self.model_info
        return ModelCapabilities(
            vision=info["vision"],
            function_calling=info["function_calling"],
            json_output=info["json_output"],
        )

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        args = (tools, tool_choice, json_output, extra_create_args, cancellation_token)
        return await self._create(Call(_listed(messages), *args, {}))

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> Stream:
        """Text chunks, then exactly one ``CreateResult``; extra keyword arguments go to the
        inner client's ``create_stream``."""
        args = (tools, tool_choice, json_output, extra_create_args, cancellation_token)
        return self._stream(Call(_listed(messages), *args, kwargs))

    @abstractmethod
    async def _create(self, call: Call) -> CreateResult: ...

    async def _stream(self, call: Call) -> Stream:
        """The whole reply of :meth:`create` at once: its text as one chunk, then the result."""
        if call.stream_options:
            raise TypeError(
                f"{type(self).__name__}.create_stream() got unexpected keyword argument(s) "
                f"{sorted(call.stream_options)}: it has no stream of its own to pass them to"
            )
        result = await self.create(call.messages, **call.arguments())
        if isinstance(result.content, str) and result.content:
            yield result.content
        yield result


class WrappingClient(CompletionClient):
    """A :class:`CompletionClient` around another AutoGen client, ``inner``, which answers
    everything but the calls (token counts see the messages as :meth:`_as_sent` sends them)."""

    def __init__(self, inner: ChatCompletionClient):
        if not isinstance(inner, ChatCompletionClient):
            raise TypeError(
                f"inner must be an AutoGen ChatCompletionClient, got {type(inner).__name__}; "
                "wrap a persona-plugins ChatModel with ChatModelCompletionClient first"
            )
        self.inner = inner

    def _as_sent(self, messages: Sequence[LLMMessage]) -> Sequence[LLMMessage]:
        return messages

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self.inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self.inner.total_usage()

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.count_tokens(self._as_sent(messages), tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.remaining_tokens(self._as_sent(messages), tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info


def checked_stream(
    chunks: AsyncIterator[str | CreateResult],
    *,
    hold: bool,
    finish: Callable[[CreateResult], Awaitable[CreateResult]],
) -> AsyncIterator[str | CreateResult]:
    """An AutoGen stream whose final ``CreateResult`` goes through ``finish`` before it goes out
    (:func:`~persona_plugins.adapter_kit.held_until_final`; ``hold`` keeps the chunks back until
    then)."""
    return held_until_final(
        chunks,
        hold=hold,
        is_final=lambda chunk: isinstance(chunk, CreateResult),
        finish=finish,
        text_of=lambda item: str(item.content) if isinstance(item, CreateResult) else item,
    )


def _listed(messages: Sequence[LLMMessage]) -> Sequence[LLMMessage]:
    """The call's messages, read more than once: a one-shot iterable becomes a list."""
    return messages if isinstance(messages, list | tuple) else list(messages)
