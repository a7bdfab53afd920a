"""Kernel filters: persona injection at prompt rendering, guardrails on function results.
SK calls a filter as ``filter(context, next=...)`` and keys it by ``id()``."""

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
    """The chat service (and its settings) the kernel will run the context's function on, as
    the function chooses it; None when that is not a chat service."""
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
    """A prompt-rendering filter that writes the persona into every rendered chat prompt (the
    README's *Semantic Kernel* section); ``last_prepared`` is the persona and prompt of the latest.
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
    """A function-invocation filter that guards function results with the pipeline's guard
    operation (the README's *Semantic Kernel* section).

    Args:
        pipeline: the pipeline whose guard runs.
        guard_function: which functions' results are checked (default: prompt functions).
        prompt_filter: the prompt filter whose conversation before the persona the guard reads.

    Raises:
        GuardrailViolation: from the invocation, when ``enforce`` blocks a result.

    Attributes:
        last_findings, last_resolution: those of the latest result (also in its metadata under
            :data:`FINDINGS_KEY` and :data:`RESOLUTION_KEY`).
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

        async def check(text: str) -> str | None:
            """Guard ``text``; return the text that replaces it, if any (a ``block`` raises)."""
            outcome = await self.pipeline.guard(text, messages, model=model)
            self.last_findings = result.metadata[FINDINGS_KEY] = outcome.findings
            self.last_resolution = outcome.resolution
            if outcome.resolution is not None:
                result.metadata[RESOLUTION_KEY] = outcome.resolution
            if outcome.blocked:
                raise outcome.violation(messages or [])
            return outcome.text if outcome.text != text else None

        value = result.value
        if context.is_streaming and isinstance(value, AsyncIterable):
            enforce = self.pipeline.config.guard == "enforce"
            result.value = _guarded_stream(value, check, enforce=enforce)
        elif context.is_streaming and isinstance(value, Iterator):  # a native generator
            chunks = await _checked(list(value), check)
            result.value = (chunk for chunk in chunks)  # SK streams generators only
        else:
            replaced = await check(str(result))
            if replaced is not None:
                result.value = _with_text(value, replaced)

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


_Check = Callable[[str], Awaitable[str | None]]


async def _guarded_stream(
    stream: AsyncIterable[Any], check: _Check, *, enforce: bool
) -> AsyncGenerator[Any, None]:
    """``enforce``: buffered and checked before the first chunk; else checked at the end."""
    if enforce:
        for chunk in await _checked([chunk async for chunk in stream], check):
            yield chunk
        return
    parts: list[str] = []
    async for chunk in stream:
        parts.append(_chunk_text(chunk))
        yield chunk
    await check("".join(parts))


async def _checked(chunks: list[Any], check: _Check) -> list[Any]:
    """A stream's chunks checked as one text: themselves, or the text that replaces them in one
    chunk shaped like the first."""
    replaced = await check("".join(_chunk_text(c) for c in chunks))
    if replaced is None:
        return chunks
    return [_with_text(chunks[0] if chunks else None, replaced, chunk=True)]


def _chunk_text(chunk: Any) -> str:
    if isinstance(chunk, list):
        return str(chunk[0]) if chunk else ""
    return str(chunk)


def _with_text(value: Any, text: str, *, chunk: bool = False) -> Any:
    """A result's value (``chunk``: a stream's first chunk, a list of messages or a message)
    with ``text`` in place of its first message's, shaped like it; ``text`` alone when there is
    no such SK message."""
    first = value[0] if isinstance(value, list) and value else (value if chunk else None)
    kind: type[ChatMessageContent]
    if chunk and isinstance(first, StreamingChatMessageContent):
        kind, rest, extra = StreamingChatMessageContent, [], {"choice_index": first.choice_index}
    elif not chunk and isinstance(first, ChatMessageContent):
        kind, rest, extra = ChatMessageContent, value[1:], {"name": first.name}
    else:
        return text
    metadata = dict(first.metadata)
    message = kind(
        role=first.role, content=text, ai_model_id=first.ai_model_id, metadata=metadata, **extra
    )
    return [message, *rest] if isinstance(value, list) else message
