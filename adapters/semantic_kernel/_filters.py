"""Kernel filters: persona injection at prompt rendering, guardrails on function results.

SK calls a filter as ``filter(context, next=...)``, so the second parameter must be named
``next``. Each filter here is one object, added once with ``kernel.add_filter``; SK keys filters by
``id()``, so the same object is what removes it again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterator
from typing import Any

from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.chat_message_content import ChatMessageContent
from semantic_kernel.contents.streaming_chat_message_content import StreamingChatMessageContent
from semantic_kernel.exceptions import KernelServiceNotFoundError
from semantic_kernel.filters.filter_context_base import FilterContextBase
from semantic_kernel.filters.filter_types import FilterTypes
from semantic_kernel.filters.functions.function_invocation_context import (
    FunctionInvocationContext,
)
from semantic_kernel.filters.prompts.prompt_render_context import PromptRenderContext
from semantic_kernel.functions.function_result import FunctionResult
from semantic_kernel.functions.kernel_function import KernelFunction
from semantic_kernel.functions.kernel_function_from_prompt import KernelFunctionFromPrompt

from persona_plugins.adapters.semantic_kernel._messages import render_prompt, to_core_messages
from persona_plugins.adapters.semantic_kernel._model import SemanticKernelChatModel
from persona_plugins.adapters.semantic_kernel._service import PersonaChatCompletion
from persona_plugins.model import Message
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import Finding, PreparedPrompt, Resolution

#: Keys of the findings and of the ``enforce`` resolution in a guarded ``FunctionResult.metadata``.
FINDINGS_KEY = "persona_plugins.findings"
RESOLUTION_KEY = "persona_plugins.resolution"

NextFilter = Callable[[Any], Awaitable[None]]


def chat_service_for(
    context: FilterContextBase,
) -> tuple[ChatCompletionClientBase, PromptExecutionSettings] | None:
    """The chat service (and its settings) the kernel will run the context's function on.

    The same choice the function makes itself: settings in the arguments, then the function's
    own, then the kernel's first service. None when that is not a chat service.
    """
    try:
        service, settings = context.kernel.select_ai_service(
            function=context.function, arguments=context.arguments
        )
    except KernelServiceNotFoundError:
        return None
    if not isinstance(service, ChatCompletionClientBase):
        return None
    return service, settings


def is_prompt_function(function: KernelFunction) -> bool:
    """The default choice of functions to guard: prompt functions, whose results are model text."""
    return isinstance(function, KernelFunctionFromPrompt)


class PersonaPromptRenderingFilter:
    """A prompt-rendering filter that writes the persona into every rendered chat prompt.

    :class:`PersonaPlugin` adds it to a kernel; alone:
    ``kernel.add_filter(FilterTypes.PROMPT_RENDERING, PersonaPromptRenderingFilter(pipeline))``.

    The rendered prompt is read as SK reads it (``ChatHistory.from_rendered_prompt``), the
    pipeline's ``prepare`` stage injects the persona, and the messages are written back in SK's
    ``<message role="...">`` format with every text escaped (:func:`render_prompt`). Prompts for a
    non-chat service, or for a :class:`PersonaChatCompletion` (which injects the persona itself),
    are left as they are. ``last_prepared`` is the persona and prompt of the latest one.
    """

    filter_type = FilterTypes.PROMPT_RENDERING
    #: How many rewritten prompts :meth:`conversation_before` remembers.
    remembered = 64

    def __init__(self, pipeline: PersonaPipeline):
        self.pipeline = pipeline
        self.last_prepared: PreparedPrompt | None = None
        self._before: OrderedDict[str, list[Message]] = OrderedDict()

    def conversation_before(self, rendered_prompt: str) -> list[Message] | None:
        """The conversation of a prompt this filter rewrote, as it was before the persona
        (None for a prompt it did not rewrite, or one rewritten too long ago)."""
        return self._before.get(rendered_prompt)

    async def __call__(self, context: PromptRenderContext, next: NextFilter) -> None:
        await next(context)
        if context.function_result is not None or not context.rendered_prompt:
            return
        chosen = chat_service_for(context)
        if chosen is None or isinstance(chosen[0], PersonaChatCompletion):
            return
        service, settings = chosen
        translation = to_core_messages(
            ChatHistory.from_rendered_prompt(context.rendered_prompt).messages
        )
        if not translation.messages:
            return
        view = SemanticKernelChatModel(service, settings, originals=translation.originals)
        prepared = await self.pipeline.prepare(translation.messages, model=view)
        self.last_prepared = prepared
        unchanged = len(prepared.prompt) == len(translation.messages) and all(
            new is old for new, old in zip(prepared.prompt, translation.messages, strict=True)
        )
        if not unchanged:
            rendered = render_prompt(
                prepared.prompt, translation.originals, instruction_role=service.instruction_role
            )
            context.rendered_prompt = rendered
            self._before[rendered] = translation.messages
            self._before.move_to_end(rendered)
            while len(self._before) > self.remembered:
                self._before.popitem(last=False)


class PersonaFunctionInvocationFilter:
    """A function-invocation filter that guards function results (prompt functions by default,
    ``guard_function`` picks others).

    :class:`PersonaPlugin` adds it when ``guard`` is on; alone, add it with
    ``kernel.add_filter(FilterTypes.FUNCTION_INVOCATION, guard_filter)``.

    Each result's text goes through the pipeline's guard operation (``PersonaPipeline.guard``, as
    a turn's answer does) with the conversation before the persona (``prompt_filter``'s, else the
    rendered prompt's). The findings go to ``result.metadata["persona_plugins.findings"]``
    (``last_findings``). ``monitor`` does no more; ``enforce`` applies the guard's decision: the
    annotated or regenerated text replaces the result's, and ``block`` raises
    :class:`~persona_plugins.GuardrailViolation` (the resolution is in
    ``result.metadata["persona_plugins.resolution"]``, ``last_resolution``). A streamed result
    is checked when it ends (``monitor``) or, buffered, before its first chunk (``enforce``).
    """

    filter_type = FilterTypes.FUNCTION_INVOCATION

    def __init__(
        self,
        pipeline: PersonaPipeline,
        *,
        guard_function: Callable[[KernelFunction], bool] = is_prompt_function,
        prompt_filter: PersonaPromptRenderingFilter | None = None,
    ):
        self.pipeline = pipeline
        self.guard_function = guard_function
        self.prompt_filter = prompt_filter
        self.last_findings: list[Finding] = []
        self.last_resolution: Resolution | None = None

    async def __call__(self, context: FunctionInvocationContext, next: NextFilter) -> None:
        await next(context)
        result = context.result
        if (
            result is None
            or self.pipeline.config.guard == "off"
            or not self.guard_function(context.function)
        ):
            return
        messages = self._conversation(result)
        chosen = chat_service_for(context)
        model = SemanticKernelChatModel(*chosen) if chosen is not None else None
        value = result.value
        if context.is_streaming and isinstance(value, AsyncIterable):
            result.value = self._guarded_stream(value, result, messages, model)
        elif context.is_streaming and isinstance(value, Iterator):  # a native generator
            chunks = list(value)
            text = "".join(_chunk_text(c) for c in chunks)
            replaced = await self._guard(result, text, messages, model)
            kept = [replaced] if replaced is not None else chunks
            result.value = (chunk for chunk in kept)  # SK streams generators only
        else:
            replaced = await self._guard(result, str(result), messages, model)
            if replaced is not None:
                result.value = _with_text(value, replaced)

    async def _guard(
        self,
        result: FunctionResult,
        text: str,
        messages: list[Message] | None,
        model: SemanticKernelChatModel | None,
    ) -> str | None:
        """Guard ``text``; return the text that replaces it, if any. A ``block`` raises
        :class:`~persona_plugins.GuardrailViolation`."""
        outcome = await self.pipeline.guard(text, messages, model=model)
        self.last_findings = outcome.findings
        result.metadata[FINDINGS_KEY] = outcome.findings
        self.last_resolution = outcome.resolution
        if outcome.resolution is not None:
            result.metadata[RESOLUTION_KEY] = outcome.resolution
        if outcome.blocked:
            raise outcome.violation(messages or [])
        return outcome.text if outcome.text != text else None

    async def _guarded_stream(
        self,
        stream: AsyncIterable[Any],
        result: FunctionResult,
        messages: list[Message] | None,
        model: SemanticKernelChatModel | None,
    ) -> AsyncGenerator[Any, None]:
        if self.pipeline.config.guard == "enforce":
            chunks = [chunk async for chunk in stream]
            text = "".join(_chunk_text(c) for c in chunks)
            replaced = await self._guard(result, text, messages, model)
            if replaced is None:
                for chunk in chunks:
                    yield chunk
            else:
                yield _chunk_with_text(chunks[0] if chunks else None, replaced)
            return
        parts: list[str] = []
        async for chunk in stream:
            parts.append(_chunk_text(chunk))
            yield chunk
        await self._guard(result, "".join(parts), messages, model)

    def _conversation(self, result: FunctionResult) -> list[Message] | None:
        """The conversation a prompt function's result answers: as the prompt filter received
        it (before the persona), else as the rendered prompt has it."""
        if self.prompt_filter is not None and result.rendered_prompt:
            before = self.prompt_filter.conversation_before(result.rendered_prompt)
            if before is not None:
                return before
        history = result.metadata.get("messages")
        if not isinstance(history, ChatHistory):
            if not result.rendered_prompt:
                return None
            history = ChatHistory.from_rendered_prompt(result.rendered_prompt)
        messages = to_core_messages(history.messages).messages
        return messages or None


def _chunk_text(chunk: Any) -> str:
    if isinstance(chunk, list):
        return str(chunk[0]) if chunk else ""
    return str(chunk)


def _with_text(value: Any, text: str) -> Any:
    """A function result's value with its text replaced (a prompt function's first message)."""
    if isinstance(value, list) and value and isinstance(value[0], ChatMessageContent):
        first = value[0]
        replaced = ChatMessageContent(
            role=first.role,
            content=text,
            name=first.name,
            ai_model_id=first.ai_model_id,
            metadata=dict(first.metadata),
        )
        return [replaced, *value[1:]]
    return text


def _chunk_with_text(first: Any, text: str) -> Any:
    """One streamed chunk carrying ``text``, shaped like the stream's own first chunk."""
    message = first[0] if isinstance(first, list) and first else first
    if isinstance(message, StreamingChatMessageContent):
        return [
            StreamingChatMessageContent(
                role=message.role,
                content=text,
                choice_index=message.choice_index,
                ai_model_id=message.ai_model_id,
                metadata=dict(message.metadata),
            )
        ]
    return text
