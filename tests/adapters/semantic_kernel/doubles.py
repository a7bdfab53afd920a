"""Test doubles for the Semantic Kernel adapter tests.

They exist only to record what a model or service receives, to count calls, or to force a path the
embedded model cannot take (a model call that fails, a model that asks for a function call).
Every answer comes from the real embedded SmolLM2 model, but for CannedChatCompletion's, which
serve tests about what a wrapper sends rather than what a model writes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, ClassVar

from pydantic import Field, SkipValidation
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.completion_usage import CompletionUsage
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import (
    ChatHistory,
    ChatMessageContent,
    FunctionCallContent,
    FunctionResultContent,
    StreamingChatMessageContent,
)
from semantic_kernel.contents.utils.author_role import AuthorRole
from semantic_kernel.contents.utils.finish_reason import FinishReason

from persona_plugins import ChatModel, Completion, Finding, Message, Usage, hookimpl
from persona_plugins.adapters.semantic_kernel import ChatModelChatCompletion, to_core_messages


class RecordingModel:
    """A chat model that passes every call to ``model`` and keeps the messages and settings."""

    def __init__(self, model: ChatModel):
        self.model = model
        self.model_name = getattr(model, "model_name", "recording")
        self.calls: list[dict[str, Any]] = []

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        self.calls.append({"messages": list(messages), "settings": dict(settings)})
        return await self.model.complete(messages, **settings)


class RecordingChatCompletion(ChatModelChatCompletion):
    """The real embedded-model service, also keeping each SK call: the history's messages exactly
    as received (so tests can check order and object identity), the settings and the kind."""

    received: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    async def get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings, **kwargs: Any
    ) -> list[ChatMessageContent]:
        self.received.append(
            {"kind": "call", "messages": list(chat_history.messages), "settings": settings}
        )
        return await super().get_chat_message_contents(chat_history, settings, **kwargs)

    async def get_streaming_chat_message_contents(  # type: ignore[override]
        self, chat_history: ChatHistory, settings: PromptExecutionSettings, **kwargs: Any
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        self.received.append(
            {"kind": "stream", "messages": list(chat_history.messages), "settings": settings}
        )
        async for batch in super().get_streaming_chat_message_contents(
            chat_history, settings, **kwargs
        ):
            yield batch


class FailingChatCompletion(ChatCompletionClientBase):
    """A service whose every call raises ``error`` (to check the error reaches the caller)."""

    error: SkipValidation[Exception] = Field(exclude=True)

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        raise self.error


class FunctionCallingChatCompletion(ChatModelChatCompletion):
    """The embedded model behind a service that supports function calling.

    SmolLM2-135M cannot ask for a function call, so this service forces one: when function calling
    is on and the history holds no function result, it answers with a call to ``function``
    (``arguments``); otherwise the real model answers. Every history it receives is kept in
    ``received``.
    """

    SUPPORTS_FUNCTION_CALLING: ClassVar[bool] = True
    function: str = "weather-forecast"
    arguments: dict[str, Any] = Field(default_factory=lambda: {"city": "Paris"})
    received: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    def __init__(
        self,
        model: ChatModel,
        *,
        function: str = "weather-forecast",
        arguments: dict[str, Any] | None = None,
        **options: Any,
    ):
        super().__init__(model, **options)
        self.function = function
        self.arguments = arguments if arguments is not None else {"city": "Paris"}

    def _asks_for_call(self, chat_history: ChatHistory, settings: PromptExecutionSettings) -> bool:
        if settings.function_choice_behavior is None:  # a plain completion
            return False
        return not any(
            isinstance(item, FunctionResultContent)
            for message in chat_history.messages
            for item in message.items
        )

    async def _complete(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> Completion:
        # The embedded model reads text: the function's result becomes a user message.
        core = [m for m in to_core_messages(chat_history.messages).messages if m.role != "tool"]
        results = [
            str(item.result)
            for message in chat_history.messages
            for item in message.items
            if isinstance(item, FunctionResultContent)
        ]
        if not results:
            return await super()._complete(chat_history, settings)
        prompt = [m for m in core if m.role in ("system", "user")]
        prompt.append(Message.user(f"The {self.function} function returned: {results[-1]}"))
        completion: Completion = await self.model.complete(prompt)
        return completion

    def _call(self, attempt: int) -> FunctionCallContent:
        return FunctionCallContent(
            id=f"call_{attempt}", name=self.function, arguments=dict(self.arguments)
        )

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        self.received.append({"kind": "call", "messages": list(chat_history.messages)})
        if self._asks_for_call(chat_history, settings):
            return [
                ChatMessageContent(
                    role=AuthorRole.ASSISTANT,
                    items=[self._call(len(self.received))],
                    ai_model_id=self.ai_model_id,
                    finish_reason=FinishReason.TOOL_CALLS,
                )
            ]
        return await super()._inner_get_chat_message_contents(chat_history, settings)

    async def _inner_get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        function_invoke_attempt: int = 0,
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        self.received.append({"kind": "stream", "messages": list(chat_history.messages)})
        if self._asks_for_call(chat_history, settings):
            yield [
                StreamingChatMessageContent(
                    role=AuthorRole.ASSISTANT,
                    items=[self._call(len(self.received))],  # type: ignore[list-item]
                    choice_index=0,
                    ai_model_id=self.ai_model_id,
                    finish_reason=FinishReason.TOOL_CALLS,
                    function_invoke_attempt=function_invoke_attempt,
                )
            ]
            return
        async for batch in super()._inner_get_streaming_chat_message_contents(
            chat_history, settings, function_invoke_attempt
        ):
            yield batch


class FlagDetector:
    """A guardrail plugin whose ``check_response`` reports one finding for every response that
    ``flags`` (default: every response), under the detector name ``test_detector``."""

    name = "test_detector"

    def __init__(self, flags: Callable[[str], bool] = lambda text: True):
        self.flags = flags
        self.checked: list[dict[str, Any]] = []

    @hookimpl
    def check_response(
        self, messages: Sequence[Message], response: str, persona: Any
    ) -> list[Finding]:
        self.checked.append({"messages": list(messages), "response": response, "persona": persona})
        if not self.flags(response):
            return []
        return [
            Finding(
                detector=self.name,
                message="the test detector flags this response",
                severity="high",
                score=0.9,
                evidence=response[:40],
            )
        ]


def texts(messages: Sequence[ChatMessageContent]) -> list[tuple[str, str]]:
    """``(role, text)`` of each SK message."""
    return [(m.role.value, m.content) for m in messages]


class ScriptedReplyChatCompletion(FunctionCallingChatCompletion):
    """:class:`FunctionCallingChatCompletion` whose text replies come from ``replies`` first (one
    per call, in order; then the real model), to force a reply SmolLM2 would not write, such as a
    refusal in character. With ``call_first=False`` it never asks for a function call."""

    replies: list[str] = Field(default_factory=list)
    call_first: bool = True

    def _asks_for_call(self, chat_history: ChatHistory, settings: PromptExecutionSettings) -> bool:
        return self.call_first and super()._asks_for_call(chat_history, settings)

    async def _complete(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> Completion:
        if self.replies:
            return Completion(
                text=self.replies.pop(0),
                usage=Usage(input_tokens=10, output_tokens=5),
                finish_reason="stop",
            )
        return await super()._complete(chat_history, settings)


class CannedChatCompletion(ChatCompletionClientBase):
    """A service that answers every call at once with ``answer`` (and its usage), keeping each
    history (the very message objects), the settings and the kind of call in ``received``; for
    tests that compare what two wrappers send, not what a model writes. With function calling
    on and a kernel given, it first asks for ``function`` (once per history without a result)."""

    SUPPORTS_FUNCTION_CALLING: ClassVar[bool] = True
    ai_model_id: str = "canned"
    answer: str = "Four."
    function: str | None = None
    received: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    def _reply(self, chat_history: ChatHistory, settings: PromptExecutionSettings, kind: str):
        self.received.append(
            {"kind": kind, "messages": list(chat_history.messages), "settings": settings}
        )
        wants_call = self.function is not None and settings.function_choice_behavior is not None
        if wants_call and not any(
            isinstance(item, FunctionResultContent)
            for message in chat_history.messages
            for item in message.items
        ):
            call = FunctionCallContent(id="call_1", name=self.function, arguments={"city": "Oslo"})
            return {"items": [call], "finish_reason": FinishReason.TOOL_CALLS}
        usage = CompletionUsage(prompt_tokens=12, completion_tokens=3)
        return {"content": self.answer, "metadata": {"usage": usage}}

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        fields = self._reply(chat_history, settings, "call")
        return [ChatMessageContent(role=AuthorRole.ASSISTANT, ai_model_id="canned", **fields)]

    async def _inner_get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        function_invoke_attempt: int = 0,
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        fields = self._reply(chat_history, settings, "stream")
        yield [
            StreamingChatMessageContent(
                role=AuthorRole.ASSISTANT,
                choice_index=0,
                ai_model_id="canned",
                function_invoke_attempt=function_invoke_attempt,
                **fields,
            )
        ]
