"""Test doubles for the AutoGen adapter tests.

They exist only to record exactly what an inner client receives, to count calls, or to force a
fault (an exception, a stall). Everything that needs a real model uses the embedded SmolLM2.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # type: ignore[attr-defined]
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from persona_plugins import Completion, Message, Usage
from persona_plugins.adapters.autogen import ChatModelCompletionClient

TEXT_ONLY = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=False,
    family="unknown",
    structured_output=False,
)
WITH_TOOLS_AND_VISION = ModelInfo(
    vision=True,
    function_calling=True,
    json_output=True,
    family="unknown",
    structured_output=False,
)
SINGLE_SYSTEM_MESSAGE = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=False,
    family="unknown",
    structured_output=False,
    multiple_system_messages=False,
)


class RecordingClient(ChatCompletionClient):
    """An AutoGen client that answers from a script and records every call it receives.

    ``calls`` holds one dict per call (``kind`` is ``create`` or ``stream``), with the message
    list exactly as received, so tests can check order and object identity. With ``error`` set,
    every call raises that exception instead of answering.
    """

    def __init__(
        self,
        replies: Sequence[str | CreateResult] = ("Aye, two and two make four.",),
        *,
        usage: RequestUsage | None = None,
        model_info: ModelInfo | None = None,
        error: BaseException | None = None,
        token_cost: int = 10,
        context_window: int = 1000,
    ):
        self.replies = list(replies)
        self.usage = usage or RequestUsage(prompt_tokens=12, completion_tokens=5)
        self._model_info = model_info or TEXT_ONLY
        self.error = error
        self.token_cost = token_cost
        self.context_window = context_window
        self.calls: list[dict[str, Any]] = []
        self.closed = False

    def _record(self, kind: str, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        self.calls.append({"kind": kind, "messages": list(messages), **kwargs})
        if self.error is not None:
            raise self.error
        reply = self.replies[min(len(self.calls), len(self.replies)) - 1]
        if isinstance(reply, CreateResult):
            return reply
        return CreateResult(finish_reason="stop", content=reply, usage=self.usage, cached=False)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["kind"] == kind]

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
        return self._record(
            "create",
            messages,
            tools=list(tools),
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=dict(extra_create_args),
            cancellation_token=cancellation_token,
        )

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        async def stream() -> AsyncGenerator[str | CreateResult, None]:
            result = self._record(
                "stream",
                messages,
                tools=list(tools),
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=dict(extra_create_args),
                cancellation_token=cancellation_token,
            )
            if isinstance(result.content, str):
                for piece in re.findall(r"\S+\s*", result.content):
                    yield piece
            yield result

        return stream()

    async def close(self) -> None:
        self.closed = True

    def actual_usage(self) -> RequestUsage:
        return self.usage

    def total_usage(self) -> RequestUsage:
        return RequestUsage(
            prompt_tokens=self.usage.prompt_tokens * len(self.calls),
            completion_tokens=self.usage.completion_tokens * len(self.calls),
        )

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.token_cost * len(messages) + len(tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.context_window - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        return ModelCapabilities(  # type: ignore[typeddict-item]
            vision=self._model_info["vision"],
            function_calling=self._model_info["function_calling"],
            json_output=self._model_info["json_output"],
        )

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info


class RecordingModelClient(ChatModelCompletionClient):
    """A real :class:`ChatModelCompletionClient` that also keeps the messages of every call."""

    def __init__(self, model: Any, **kwargs: Any):
        super().__init__(model, **kwargs)
        self.received: list[list[LLMMessage]] = []

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        self.received.append(list(messages))
        return await super().create(messages, **kwargs)


class StallingModel:
    """A chat model that never answers; ``started`` is set once a call is waiting."""

    model_name = "stalling"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.calls = 0

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        self.calls += 1
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover


class EchoModel:
    """A persona-plugins chat model that is not an AutoGen client (for type errors)."""

    model_name = "echo"

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        return Completion(text=messages[-1].content, usage=Usage())
