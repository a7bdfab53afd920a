"""Conversions between Semantic Kernel chat services and persona-plugins chat models."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field, SkipValidation
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.completion_usage import CompletionUsage
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.chat_message_content import ChatMessageContent
from semantic_kernel.contents.streaming_chat_message_content import StreamingChatMessageContent
from semantic_kernel.contents.utils.author_role import AuthorRole

from persona_plugins.adapter_kit import require_chat_model, usage_from
from persona_plugins.adapters.semantic_kernel._messages import (
    finish_reason,
    from_core_messages,
    to_core_messages,
)
from persona_plugins.config import flatten_generation_settings, nest_generation_settings
from persona_plugins.model import ChatModel, Completion, Message, Usage
from persona_plugins.turn_model import model_name as core_model_name

PROVIDER_NAME = "semantic_kernel"


def usage_of(*messages: ChatMessageContent) -> Usage:
    """The token usage SK messages carry in ``metadata["usage"]``, summed (zero when none does)."""
    total: Usage | None = None
    for message in messages:
        record = message.metadata.get("usage")
        if record:
            usage = _usage(record)
            total = usage if total is None else total + usage
    return Usage() if total is None else total


def _usage(record: Any) -> Usage:
    """:func:`usage_from`, read straight from SK's own record (the usual one) when it is one."""
    if type(record) is CompletionUsage:
        prompt, completion = record.prompt_tokens, record.completion_tokens
        return Usage(input_tokens=prompt or 0, output_tokens=completion or 0)
    return usage_from(record)


def sk_reply(
    text: str,
    usage: Usage | None = None,
    reason: str | None = None,
    *,
    chunk: bool = False,
    **fields: Any,
) -> Any:
    """An answer as an SK assistant message (``chunk``: a first-choice streaming chunk), with its
    finish reason in SK's enum and its usage, if given, in ``metadata["usage"]`` as SK's
    ``CompletionUsage``."""
    if usage is not None:
        sk_usage = CompletionUsage(
            prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens
        )
        fields["metadata"] = {"usage": sk_usage, **fields.get("metadata", {})}
    if chunk:
        fields["choice_index"] = 0
    kind = StreamingChatMessageContent if chunk else ChatMessageContent
    return kind(
        role=AuthorRole.ASSISTANT, content=text, finish_reason=finish_reason(reason), **fields
    )


def with_generation(
    settings: PromptExecutionSettings,
    generation: Mapping[str, Any],
    *,
    keep_function_calling: bool = False,
) -> PromptExecutionSettings:
    """A copy of ``settings`` with generation settings (``max_tokens``, ``temperature``, ...) set
    on the fields the settings class has, the others in ``extension_data``; without function
    calling unless ``keep_function_calling``. ``settings`` itself when nothing changes."""
    drop_calling = not keep_function_calling and settings.function_choice_behavior is not None
    if not drop_calling and not generation:
        return settings
    copy = settings.model_copy(update={"function_choice_behavior": None} if drop_calling else {})
    generation = flatten_generation_settings(generation)
    if generation:
        fields = type(copy).model_fields
        extension = dict(copy.extension_data)
        for key, value in generation.items():
            if key in fields:
                setattr(copy, key, value)
            else:
                extension[key] = value
        copy.extension_data = extension
    return copy


class SemanticKernelChatModel:
    """A persona-plugins :class:`~persona_plugins.ChatModel` backed by an SK chat service:
    plain completions, function calling off, the pipeline's generation settings set on a copy of
    ``settings`` (default: the service's own). ``originals`` and ``model_name`` are set by the
    adapter; ``responses`` holds every ``ChatMessageContent`` the service returned through it.
    """

    provider_name = PROVIDER_NAME
    supports_multiple_system_messages = True

    def __init__(
        self,
        service: ChatCompletionClientBase,
        settings: PromptExecutionSettings | None = None,
        *,
        originals: dict[int, ChatMessageContent] | None = None,
        model_name: str | None = None,
    ):
        self.service = service
        self.settings = settings
        self.model_name = model_name or service.ai_model_id
        self._originals = originals or {}
        self.responses: list[ChatMessageContent] = []

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        base = self.settings
        if base is None:
            base = self.service.instantiate_prompt_execution_settings()
        history = ChatHistory(
            messages=from_core_messages(
                messages, self._originals, instruction_role=self.service.instruction_role
            )
        )
        results = await self.service.get_chat_message_contents(
            history, with_generation(base, settings)
        )
        if not results:
            raise RuntimeError(f"{type(self.service).__name__} returned no message")
        message = results[0]
        self.responses.append(message)
        reason = message.finish_reason
        return Completion.model_construct(
            text=message.content,
            usage=usage_of(message),
            finish_reason=reason.value if reason is not None else None,
            model=message.ai_model_id or self.model_name,
        )


_TYPED = {"max_tokens", "temperature", "top_p", "seed", "stop"}


class ChatModelPromptExecutionSettings(PromptExecutionSettings):
    """Execution settings of :class:`ChatModelChatCompletion`: the typed fields and any other key
    (``repeat_penalty=1.3``, kept in ``extension_data``) go to ``ChatModel.complete``."""

    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None

    def generation_settings(self) -> dict[str, Any]:
        """The settings for ``ChatModel.complete``: ``extension_data``, then the typed fields."""
        extension = self.extension_data.items()
        settings = {k: v for k, v in extension if k != "ai_model_id" and v is not None}
        return {**settings, **self.model_dump(include=_TYPED, exclude_none=True)}


class ChatModelChatCompletion(ChatCompletionClientBase):
    """A Semantic Kernel chat service backed by any persona-plugins chat model (text only, no
    function calling; a stream is the whole answer as one chunk).

    Args:
        model: the chat model.
        ai_model_id: the model id SK reports (default: the model's ``model_name``).
        service_id: the kernel service id (default: ``ai_model_id``).

    Raises:
        TypeError: when ``model`` has no ``complete``; a call raises ValueError for a history
        with non-text content.
    """

    SUPPORTS_FUNCTION_CALLING: ClassVar[bool] = False
    model: SkipValidation[Any] = Field(exclude=True)

    def __init__(
        self,
        model: ChatModel,
        *,
        ai_model_id: str | None = None,
        service_id: str | None = None,
    ):
        require_chat_model(model)
        super().__init__(
            ai_model_id=ai_model_id or core_model_name(model),
            service_id=service_id or "",
            model=model,
        )

    def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
        return ChatModelPromptExecutionSettings

    async def _complete(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> Completion:
        translation = to_core_messages(chat_history.messages)
        if not translation.text_only:
            raise ValueError(
                f"{type(self.model).__name__} takes text only; this chat history has images, "
                "function calls or function results. Use a service with function calling for "
                "agents with plugins."
            )
        generation: dict[str, Any] = {}
        if isinstance(settings, ChatModelPromptExecutionSettings):
            generation = settings.generation_settings()
        # SK settings are flat; names the core does not know travel as `extra`.
        completion: Completion = await self.model.complete(
            translation.messages, **nest_generation_settings(generation)
        )
        return completion

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        return [await self._reply(chat_history, settings)]

    async def _inner_get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        function_invoke_attempt: int = 0,
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        yield [
            await self._reply(
                chat_history, settings, chunk=True, function_invoke_attempt=function_invoke_attempt
            )
        ]

    async def _reply(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings, **options: Any
    ) -> Any:
        """The model's whole answer as one SK message (``chunk``: one streaming chunk)."""
        completion = await self._complete(chat_history, settings)
        answer = completion.text, completion.usage, completion.finish_reason
        return sk_reply(*answer, ai_model_id=self.ai_model_id, inner_content=completion, **options)


def embedded_chat_completion(
    model_path: str | None = None, *, service_id: str | None = None, **options: Any
) -> ChatModelChatCompletion:
    """An SK chat service on the embedded SmolLM2 model (or another GGUF file); ``options`` go
    to :class:`~persona_plugins.integrations.llama_cpp.LlamaCppChatModel`."""
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    return ChatModelChatCompletion(LlamaCppChatModel(model_path, **options), service_id=service_id)
