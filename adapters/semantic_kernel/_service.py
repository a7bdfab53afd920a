"""``PersonaChatCompletion``: the persona-plugins pipeline around any SK chat service."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, Awaitable, Mapping
from typing import Any, TypeVar

import pluggy
from opentelemetry.trace import TracerProvider
from pydantic import Field, PrivateAttr, SkipValidation
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.chat_message_content import ChatMessageContent
from semantic_kernel.contents.streaming_chat_message_content import StreamingChatMessageContent
from semantic_kernel.contents.utils.author_role import AuthorRole

from persona_plugins.adapters.semantic_kernel._messages import (
    Translation,
    finish_reason,
    to_core_messages,
)
from persona_plugins.adapters.semantic_kernel._model import (
    SemanticKernelChatModel,
    sk_usage,
    usage_of,
    with_generation,
)
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import ModelCallError
from persona_plugins.model import Usage
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import PreparedPrompt, TurnResult

T = TypeVar("T")
_CHUNK = re.compile(r"\S+\s*|\s+")
METADATA_KEY = "persona_plugins"


def function_calling_in_effect(
    service: ChatCompletionClientBase, settings: PromptExecutionSettings, kwargs: Mapping[str, Any]
) -> bool:
    """True when this call may make the model call kernel functions.

    ``ChatCompletionAgent`` always sets a function choice behaviour, so its mere presence says
    little: it counts only for a service that supports function calling, with a kernel that has
    functions to offer.
    """
    behavior = settings.function_choice_behavior
    kernel = kwargs.get("kernel")
    if not service.SUPPORTS_FUNCTION_CALLING or behavior is None or kernel is None:
        return False
    if not behavior.enable_kernel_functions:
        return False
    return bool(behavior.get_config(kernel).available_functions)


class PersonaChatCompletion(ChatCompletionClientBase):
    """Runs the persona-plugins pipeline around any Semantic Kernel chat service.

    Install with ``pip install "persona-plugins[semantic-kernel]"``.

    ``ChatCompletionAgent`` and the orchestrations call their chat service directly, so kernel
    filters never see their prompts: give them this service instead.

    - With ensemble, refinement or guardrails on, a text turn runs the whole pipeline
      (``last_result`` has everything) and its answer comes back with the turn's usage in
      ``metadata["usage"]`` and a summary in ``metadata["persona_plugins"]``.
    - With persona injection only, the answer is the model's own: each call is the inner
      service's call with the persona's system message (``last_prepared``), its message or
      stream passed through unchanged.
    - Calls where the model may call kernel functions, and histories with images, function calls
      or results, get the persona's system message only and otherwise reach the inner service
      untouched, so function calling (SK's auto-invocation loop) works as before; the calls and
      results it adds reach the caller's history.

    Example::

        import asyncio
        from semantic_kernel.agents import ChatCompletionAgent
        from persona_plugins.adapters.semantic_kernel import (
            PersonaChatCompletion,
            embedded_chat_completion,
        )

        async def main() -> None:
            service = PersonaChatCompletion(embedded_chat_completion(), persona="pirate_captain")
            agent = ChatCompletionAgent(service=service, name="captain")
            response = await agent.get_response("Where is the treasure?")
            print(response.message.content, service.last_prepared.persona.name)

        asyncio.run(main())

    Streaming (``invoke_stream``, which the orchestrations use): with persona injection only, the
    inner service's own stream passes straight through; otherwise the turn runs first and its text
    is streamed in word-sized chunks, the last one carrying the metadata.

    Args:
        inner: the SK chat service that does the real model calls.
        config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields.
        plugin_manager: the persona-plugins plugin manager (default: the shared one).
        tracer_provider: OpenTelemetry tracer provider (default: the global one).
        service_id: the kernel service id (default: the inner service's, so this service takes
            its place in a kernel).
        **overrides: config fields on top of ``config`` (``persona="historian"``,
            ``ensemble="jekyll_hyde"``).

    Attributes:
        inner: the wrapped service; ``pipeline``: the :class:`~persona_plugins.PersonaPipeline`.
        last_result: the :class:`~persona_plugins.TurnResult` of the latest pipeline turn.
        last_prepared: the :class:`~persona_plugins.results.PreparedPrompt` (persona and
            prompt) of the latest call passed through.
        model_calls, usage: model calls made through this service so far, and their tokens.
    """

    inner: SkipValidation[ChatCompletionClientBase] = Field(exclude=True)
    pipeline: SkipValidation[PersonaPipeline] = Field(exclude=True)
    _last_result: TurnResult | None = PrivateAttr(default=None)
    _last_prepared: PreparedPrompt | None = PrivateAttr(default=None)
    # calls, input tokens, output tokens: one list, updated in place (no pydantic __setattr__)
    _tally: list[int] = PrivateAttr(default_factory=lambda: [0, 0, 0])

    def __init__(
        self,
        inner: ChatCompletionClientBase,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        service_id: str | None = None,
        **overrides: Any,
    ):
        if not isinstance(inner, ChatCompletionClientBase):
            raise TypeError(
                f"inner must be a Semantic Kernel ChatCompletionClientBase, got "
                f"{type(inner).__name__}; wrap a persona-plugins ChatModel with "
                "ChatModelChatCompletion first"
            )
        pipeline = PersonaPipeline(
            SemanticKernelChatModel(inner),
            config,
            plugin_manager=plugin_manager,
            tracer_provider=tracer_provider,
            **overrides,
        )
        super().__init__(
            ai_model_id=inner.ai_model_id,
            service_id=service_id or inner.service_id,
            instruction_role=inner.instruction_role,
            inner=inner,
            pipeline=pipeline,
        )

    @property
    def last_result(self) -> TurnResult | None:
        return self._last_result

    @property
    def last_prepared(self) -> PreparedPrompt | None:
        return self._last_prepared

    @property
    def model_calls(self) -> int:
        return self._tally[0]

    @property
    def usage(self) -> Usage:
        return Usage(input_tokens=self._tally[1], output_tokens=self._tally[2])

    # -- the two calls SK makes ------------------------------------------------------------------

    async def get_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        **kwargs: Any,
    ) -> list[ChatMessageContent]:
        translation = to_core_messages(chat_history.messages)
        if self._direct(translation, settings, kwargs):
            injected = await self._injected(translation)
            sent = len(injected)
            results = await self._timed(
                self.inner.get_chat_message_contents(
                    injected, self._direct_settings(settings), **kwargs
                )
            )
            # One usage per model call: the function-calling loop's calls, then the answer.
            calls = [m for m in injected.messages[sent:] if m.role == AuthorRole.ASSISTANT]
            self._record_direct([usage_of(m) for m in [*calls, *results[:1]]], len(calls) + 1)
            # The inner service's function-calling loop appended its calls and results to the
            # history it was given; the caller (ChatCompletionAgent) reads them from its own.
            _copy_new_messages(injected, sent, chat_history)
            return results
        view = SemanticKernelChatModel(
            self.inner, settings, originals=translation.originals, model_name=self.ai_model_id
        )
        turn = await self._run(translation, view)
        # A turn that is one model call answered unchanged returns the service's own message.
        if turn.model_calls == 1 and view.responses and view.responses[-1].content == turn.text:
            message = view.responses[-1]
            message.metadata = {**message.metadata, METADATA_KEY: _summary(turn)}
            return [message]
        return [_turn_message(turn, self.ai_model_id)]

    async def get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        **kwargs: Any,
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        translation = to_core_messages(chat_history.messages)
        if self._direct(translation, settings, kwargs):
            injected = await self._injected(translation)
            copied = len(injected)
            chunks = self.inner.get_streaming_chat_message_contents(
                injected, self._direct_settings(settings), **kwargs
            )
            usages: list[Usage] = []
            attempts: set[int | None] = set()  # one model call per function-calling attempt
            try:
                while True:
                    try:
                        batch = await self._timed(chunks.__anext__())
                    except StopAsyncIteration:
                        break
                    for message in batch:
                        if message is not None and message.role == AuthorRole.ASSISTANT:
                            attempts.add(message.function_invoke_attempt)
                            if message.metadata.get("usage") is not None:
                                usages.append(usage_of(message))
                    # Function calls and results the inner loop appended, before the caller
                    # (ChatCompletionAgent.invoke_stream) looks for them after this batch.
                    copied = _copy_new_messages(injected, copied, chat_history)
                    yield batch
            finally:
                self._record_direct(usages, len(attempts))
                with contextlib.suppress(Exception):
                    await chunks.aclose()
            return
        view = SemanticKernelChatModel(
            self.inner, settings, originals=translation.originals, model_name=self.ai_model_id
        )
        turn = await self._run(translation, view)
        pieces = _CHUNK.findall(turn.text) or [""]
        for piece in pieces[:-1]:
            yield [
                StreamingChatMessageContent(
                    role=AuthorRole.ASSISTANT,
                    content=piece,
                    choice_index=0,
                    ai_model_id=self.ai_model_id,
                )
            ]
        yield [_turn_message(turn, self.ai_model_id, pieces[-1])]

    # -- helpers ---------------------------------------------------------------------------------

    def _direct(
        self,
        translation: Translation,
        settings: PromptExecutionSettings,
        kwargs: Mapping[str, Any],
    ) -> bool:
        """True when the call goes to the inner service with the persona injected, and no more:
        a turn whose answer is the model's own output (persona injection only), a conversation
        with non-text content, or a call where the model may call kernel functions. (An empty
        conversation, which the pipeline rejects, is the inner service's to answer.)"""
        return (
            self.pipeline.can_stream
            or not translation.messages
            or not translation.text_only
            or function_calling_in_effect(self.inner, settings, kwargs)
        )

    async def _injected(self, translation: Translation) -> ChatHistory:
        """The history with the persona's system message, for a call passed to the inner service."""
        if not translation.messages:
            return ChatHistory()
        view = SemanticKernelChatModel(
            self.inner, originals=translation.originals, model_name=self.ai_model_id
        )
        prepared = await self.pipeline.prepare(translation.messages, model=view)
        self._last_prepared = prepared
        messages = translation.back(prepared.prompt, instruction_role=self.inner.instruction_role)
        return ChatHistory(messages=messages)

    def _direct_settings(self, settings: PromptExecutionSettings) -> PromptExecutionSettings:
        # The same precedence as pipeline turns: the config's model_settings over the caller's.
        return with_generation(
            settings, self.pipeline.config.model_settings, keep_function_calling=True
        )

    async def _run(self, translation: Translation, view: SemanticKernelChatModel) -> TurnResult:
        try:
            turn = await self.pipeline.run(translation.messages, model=view)
        except ModelCallError as exc:
            # The inner service's own exception, unchanged, is what SK users catch and retry.
            if exc.__cause__ is not None and not isinstance(exc.__cause__, asyncio.CancelledError):
                raise exc.__cause__ from None
            raise
        self._last_result = turn
        self._add(turn.usage.input_tokens, turn.usage.output_tokens, calls=turn.model_calls)
        return turn

    async def _timed(self, call: Awaitable[T]) -> T:
        timeout = self.pipeline.config.timeout_s
        return await (asyncio.wait_for(call, timeout) if timeout else call)

    def _record_direct(self, usages: list[Usage], calls: int) -> None:
        # No span of our own: SK's model diagnostics trace the inner service's calls.
        tokens_in = sum(u.input_tokens for u in usages)
        tokens_out = sum(u.output_tokens for u in usages)
        self._add(tokens_in, tokens_out, calls=max(1, calls))

    def _add(self, tokens_in: int, tokens_out: int, *, calls: int) -> None:
        tally = self._tally
        tally[0] += calls
        tally[1] += tokens_in
        tally[2] += tokens_out

    # -- everything else delegates ---------------------------------------------------------------

    def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
        return self.inner.get_prompt_execution_settings_class()

    def instantiate_prompt_execution_settings(self, **kwargs: Any) -> PromptExecutionSettings:
        return self.inner.instantiate_prompt_execution_settings(**kwargs)

    def service_url(self) -> str | None:
        return self.inner.service_url()


def _copy_new_messages(source: ChatHistory, start: int, target: ChatHistory) -> int:
    """Append ``source.messages[start:]`` to ``target``; return the new length of ``source``."""
    for message in source.messages[start:]:
        target.add_message(message)
    return len(source.messages)


def _turn_message(turn: TurnResult, ai_model_id: str, text: str | None = None) -> Any:
    """The answer of a pipeline turn as an SK message (a streaming chunk when ``text`` is given),
    with the turn's usage in ``metadata["usage"]``."""
    chosen = next((c for c in turn.candidates if c.name == turn.chosen), None)
    options: dict[str, Any] = {
        "role": AuthorRole.ASSISTANT,
        "content": turn.text if text is None else text,
        "ai_model_id": ai_model_id,
        "finish_reason": finish_reason(chosen.finish_reason if chosen else None),
        "metadata": {"usage": sk_usage(turn.usage), METADATA_KEY: _summary(turn)},
    }
    if text is None:
        return ChatMessageContent(**options)
    return StreamingChatMessageContent(choice_index=0, **options)


def _summary(turn: TurnResult) -> dict[str, Any]:
    return {
        "persona": turn.persona.name if turn.persona else None,
        "chosen": turn.chosen,
        "model_calls": turn.model_calls,
        "action": turn.action,
        "findings": len(turn.findings),
    }
