"""``PersonaChatCompletion``: the persona-plugins pipeline around any SK chat service."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy
from opentelemetry.trace import TracerProvider
from pydantic import Field, SkipValidation
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.chat_message_content import ChatMessageContent
from semantic_kernel.contents.function_call_content import FunctionCallContent
from semantic_kernel.contents.streaming_chat_message_content import StreamingChatMessageContent
from semantic_kernel.contents.text_content import TextContent
from semantic_kernel.contents.utils.author_role import AuthorRole

from persona_plugins.adapter_kit import (
    LazyPrepared,
    Reply,
    Translation,
    TurnRecord,
    Turns,
    chosen_candidate,
    quick_allowed,
    quick_head,
    rewrites_replies,
    text_chunks,
    timed_steps,
    turn_summary,
    with_timeout,
)
from persona_plugins.adapters.semantic_kernel._messages import (
    from_core_messages,
    plain_messages,
    sk_message,
    to_core_messages,
)
from persona_plugins.adapters.semantic_kernel._model import (
    SemanticKernelChatModel,
    sk_reply,
    usage_of,
    with_generation,
)
from persona_plugins.config import PipelineConfig
from persona_plugins.model import Message, Usage
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import PreparedPrompt, TurnResult

METADATA_KEY = "persona_plugins"
_NO_PERSONA = PreparedPrompt(persona=None, persona_source="none", prompt=[])


class PersonaChatCompletion(TurnRecord, ChatCompletionClientBase):
    """Runs the persona-plugins pipeline around any Semantic Kernel chat service, streaming
    included, for ``ChatCompletionAgent`` and the orchestrations (which bypass kernel filters).
    Behaviour (pipeline turns, calls passed through, function calling, metadata): the README's
    *Semantic Kernel* section, *Agents and orchestrations*.

    Args:
        inner: the SK chat service that does the real model calls.
        config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields.
        plugin_manager, tracer_provider: as for :class:`~persona_plugins.PersonaPipeline`.
        service_id: the kernel service id (default: the inner service's).
        **overrides: config fields on top of ``config`` (``persona="historian"``).

    Raises:
        TypeError: when ``inner`` is not an SK ``ChatCompletionClientBase``.

    Attributes:
        last_result: the :class:`~persona_plugins.TurnResult` of the latest call;
        last_prepared: the persona and prompt of the latest call passed to the inner service;
        model_calls, usage: model calls made through this service so far, and their tokens.
    """

    inner: SkipValidation[ChatCompletionClientBase] = Field(exclude=True)
    pipeline: SkipValidation[PersonaPipeline] = Field(exclude=True)
    if TYPE_CHECKING:  # in the instance's own attributes, not pydantic's private ones (read on
        # every call: a private attribute costs a pydantic lookup each time); set in __init__
        _last_prepared: PreparedPrompt | LazyPrepared | None  # LazyPrepared: made when first read
        _persona: tuple[Message, str, ChatMessageContent, AuthorRole] | None  # made from, role

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
        own = self.__dict__
        own["_turns"] = Turns(pipeline)
        own["_last_prepared"] = None
        own["_persona"] = None

    @property
    def last_prepared(self) -> PreparedPrompt | None:
        prepared = self._last_prepared
        if isinstance(prepared, LazyPrepared):
            prepared = self.__dict__["_last_prepared"] = prepared()
        return prepared

    # -- the two calls SK makes ------------------------------------------------------------------

    async def get_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        **kwargs: Any,
    ) -> list[ChatMessageContent]:
        started = time.perf_counter()
        passed = await self._passed(chat_history.messages, settings, kwargs)
        if isinstance(passed, Translation):
            return await self._turn(passed, settings)
        prepared, injected, direct = passed
        sent = len(injected)
        call = self.inner.get_chat_message_contents(injected, direct, **kwargs)
        timeout = self.pipeline.config.timeout_s
        results = await (with_timeout(call, timeout) if timeout else call)
        # The function-calling loop appended its calls and results to the history it was given;
        # the caller (ChatCompletionAgent) reads them from its own.
        _copy_new(injected, sent, chat_history)
        reply = results[0] if results else None
        made = [
            m for m in [*injected.messages[sent:], *results[:1]] if m.role == AuthorRole.ASSISTANT
        ]
        usage = usage_of(*made)
        rewritten = await self._finish(
            prepared, chat_history, settings, made, reply, usage, len(made), started=started
        )
        if rewritten is None:
            return results
        return [_turn_message(rewritten, self.ai_model_id), *results[1:]]

    async def _turn(
        self, translation: Translation[ChatMessageContent], settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        """A whole pipeline turn for :meth:`get_chat_message_contents`."""
        view = self._view(translation, settings)
        turn = await self._turns.run(translation.messages, view)
        # A turn that is one model call answered unchanged returns the service's own message.
        if turn.model_calls == 1 and view.responses and view.responses[-1].content == turn.text:
            message = view.responses[-1]
            message.metadata = {**message.metadata, METADATA_KEY: turn_summary(turn)}
            return [message]
        return [_turn_message(turn, self.ai_model_id)]

    async def get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        **kwargs: Any,
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        started = time.perf_counter()
        passed = await self._passed(chat_history.messages, settings, kwargs)
        if isinstance(passed, Translation):
            turn = await self._turns.run(passed.messages, self._view(passed, settings))
            for batch in _turn_stream(turn, self.ai_model_id):
                yield batch
            return
        prepared, injected, direct = passed
        copied = sent = len(injected)
        chunks = self.inner.get_streaming_chat_message_contents(injected, direct, **kwargs)
        # A text reply the guard or the reviewers may still change is held back until then;
        # function calls, their results and the text before them pass as they come.
        hold = rewrites_replies(self.pipeline.config)
        held: list[list[StreamingChatMessageContent]] = []
        attempt: list[StreamingChatMessageContent] = []  # the assistant chunks of the last call
        usage: Usage | None = None  # none until a chunk tells
        calls = 0
        timeout = self.pipeline.config.timeout_s
        try:
            async for batch in timed_steps(chunks, timeout) if timeout else chunks:
                replies = [m for m in batch if m is not None and m.role == AuthorRole.ASSISTANT]
                current = attempt[-1].function_invoke_attempt if attempt else None
                if any(m.function_invoke_attempt != current for m in replies):
                    attempt, calls = [], calls + 1
                if any(m.metadata.get("usage") for m in replies):
                    found = usage_of(*replies)
                    usage = found if usage is None else usage + found
                attempt += replies
                copied = _copy_new(injected, copied, chat_history)
                if hold and not _calls_in(attempt) and len(replies) == len(batch):
                    held.append(batch)
                    continue
                for passed in [*held, batch]:
                    yield passed
                held = []
        except BaseException:
            self._turns.tally.add(usage, max(1, calls))
            raise
        finally:
            with contextlib.suppress(Exception):
                await chunks.aclose()
        made = [m for m in injected.messages[sent:] if m.role == AuthorRole.ASSISTANT]
        reply, usage = _merged(attempt), Usage() if usage is None else usage
        rewritten = await self._finish(
            prepared, chat_history, settings, made, reply, usage, calls, started=started
        )
        for batch in held if rewritten is None else _turn_stream(rewritten, self.ai_model_id):
            yield batch

    async def _passed(
        self,
        messages: list[ChatMessageContent],
        settings: PromptExecutionSettings,
        kwargs: Mapping[str, Any],
    ) -> Passed | Translation[ChatMessageContent]:
        """For a call passed to the inner service: its prepared prompt, the history and the
        settings it sends (by the quick route when it may). The history's translation when the
        whole turn runs in the pipeline instead."""
        quick = self._quick(messages)
        if quick is not None:
            direct = self._settings(settings)  # before last_prepared changes, as on the usual path
            return quick, self._history(quick, messages), direct
        translation = to_core_messages(messages)
        if not self._direct(translation, settings, kwargs):
            return translation
        return await self._injected(translation, settings)

    # -- the quick route -------------------------------------------------------------------------

    def _quick(self, messages: Sequence[ChatMessageContent]) -> LazyPrepared | None:
        """The persona's head message and the history's plain-text messages, when the call can
        go to the inner service with no turn machinery at all: persona injection alone (a static
        persona, nothing but the built-in persona hooks), nothing recording spans or
        measurements, a history of plain-text messages, and the persona's message put first (not
        merged into a leading system message). None: the usual path (which may still pass the
        call through). A plugin watching turns is looked for after the call
        (``Turns.passed_through`` hands such a turn back)."""
        if not quick_allowed(self.pipeline):
            return None
        plain = plain_messages(messages)
        if not plain:  # an empty history: the usual path sends it without a persona
            return None
        # every SK service takes several system messages: the pipeline's view says so as well
        head = quick_head(self.pipeline, self.pipeline.model, plain[0][0])
        return None if head is None else LazyPrepared(head, plain)

    def _history(
        self, prepared: LazyPrepared, messages: Sequence[ChatMessageContent]
    ) -> ChatHistory:
        """For a call :meth:`_quick` allows: the history for the inner service, the persona's
        system message before the caller's own message objects (as ``from_core_messages`` gives
        them back); ``prepared`` becomes :attr:`last_prepared`."""
        self.__dict__["_last_prepared"] = prepared
        return ChatHistory(messages=prepared.head.placed(messages, self._persona_message))

    def _persona_message(self, system: Message) -> ChatMessageContent:
        """The persona's system message in SK's form with the inner service's instruction role:
        the one made on an earlier call while it still holds that text and role, else a new
        one."""
        role = self.inner.instruction_role
        known = self._persona
        if known is not None and known[0] is system and known[1] == role:
            message: ChatMessageContent = known[2]
            items = message.items
            if (  # as made: nothing (a filter, the service) changed it since
                message.role is known[3]
                and message.name is None
                and not message.metadata
                and len(items) == 1
                and type(items[0]) is TextContent
                and items[0].text == system.content
            ):
                return message
        message = sk_message(system, role)
        self.__dict__["_persona"] = (system, role, message, message.role)
        return message

    def _settings(self, settings: PromptExecutionSettings) -> PromptExecutionSettings:
        """The caller's settings with the config's model_settings over them (function calling
        kept), as in a turn."""
        generation = self.pipeline.config.model_settings
        return with_generation(settings, generation, keep_function_calling=True)

    # -- helpers ---------------------------------------------------------------------------------

    def _direct(
        self,
        translation: Translation[ChatMessageContent],
        settings: PromptExecutionSettings,
        kwargs: Mapping[str, Any],
    ) -> bool:
        """True when the call goes to the inner service with the persona injected: persona
        injection only, an empty conversation, non-text content, or function calling (a function
        choice behaviour, which ``ChatCompletionAgent`` always sets, on a service that supports
        function calling and a kernel with functions)."""
        if self.pipeline.can_stream or not translation.messages or not translation.text_only:
            return True
        behavior, kernel = settings.function_choice_behavior, kwargs.get("kernel")
        if not self.inner.SUPPORTS_FUNCTION_CALLING or behavior is None or kernel is None:
            return False
        return behavior.enable_kernel_functions and bool(
            behavior.get_config(kernel).available_functions
        )

    def _view(
        self,
        translation: Translation[ChatMessageContent],
        settings: PromptExecutionSettings | None = None,
    ) -> SemanticKernelChatModel:
        return SemanticKernelChatModel(
            self.inner, settings, originals=translation.originals, model_name=self.ai_model_id
        )

    async def _injected(
        self, translation: Translation[ChatMessageContent], settings: PromptExecutionSettings
    ) -> tuple[PreparedPrompt, ChatHistory, PromptExecutionSettings]:
        """For a call passed to the inner service: the history with the persona's system message,
        and the settings with the config's model_settings over the caller's (as in a turn)."""
        settings = self._settings(settings)
        if not translation.messages:
            return _NO_PERSONA, ChatHistory(), settings
        prepared = await self.pipeline.prepare(translation.messages, model=self._view(translation))
        self.__dict__["_last_prepared"] = prepared
        messages = from_core_messages(
            prepared.prompt, translation.originals, instruction_role=self.inner.instruction_role
        )
        return prepared, ChatHistory(messages=messages), settings

    async def _finish(
        self,
        prepared: PreparedPrompt | LazyPrepared,
        history: ChatHistory,
        settings: PromptExecutionSettings,
        made: Sequence[ChatMessageContent],
        reply: ChatMessageContent | None,
        usage: Usage,
        calls: int,
        *,
        started: float,
    ) -> TurnResult | None:
        """Record the call that made ``reply`` (``made``: the assistant messages it made, ``calls``
        its model calls): a function call comes back untouched, a text reply is refined and
        guarded. Returns the turn whose text replaces the reply's; None when the reply stands."""
        replies = [*made, reply] if reply is not None else made
        called = _calls_in(replies)
        noted: dict[str, dict[str, Any]] = {}
        if called:
            noted = {
                item.id or str(index): {
                    "id": item.id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
                for index, item in enumerate(i for m in replies for i in m.items)
                if isinstance(item, FunctionCallContent)
            }
        answered = Reply(
            reply.content if reply is not None else "",
            usage,
            model_calls=max(1, calls),
            finish_reason=reply.finish_reason.value if reply and reply.finish_reason else None,
            tool_calls=list(noted.values()),
            # Not the model's text (a function call handed back to the caller, or results of
            # functions that ended the loop): it passes through untouched.
            final=reply is not None
            and reply.role == AuthorRole.ASSISTANT
            and not (called and _calls_in([reply])),
        )
        if self._turns.passed_through(prepared, answered, started=started):
            return None
        # The conversation as it now stands (tool results included), read only when needed.
        after = to_core_messages(history.messages if rewrites_replies(self.pipeline.config) else [])
        if isinstance(prepared, LazyPrepared):
            prepared = prepared()
        turn = await self._turns.finish(
            after.messages, prepared, answered, model=self._view(after, settings)
        )
        return turn if reply is not None and turn.text != reply.content else None

    # -- everything else delegates ---------------------------------------------------------------

    def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
        return self.inner.get_prompt_execution_settings_class()

    def instantiate_prompt_execution_settings(self, **kwargs: Any) -> PromptExecutionSettings:
        return self.inner.instantiate_prompt_execution_settings(**kwargs)

    def service_url(self) -> str | None:
        return self.inner.service_url()


#: What a call passed to the inner service sends: the prepared prompt (or what makes it), the
#: history and the settings.
Passed = tuple[PreparedPrompt | LazyPrepared, ChatHistory, PromptExecutionSettings]


def _copy_new(source: ChatHistory, start: int, target: ChatHistory) -> int:
    """Append ``source.messages[start:]`` to ``target``; return the new length of ``source``."""
    for message in source.messages[start:]:
        target.add_message(message)
    return len(source.messages)


def _calls_in(chunks: Sequence[ChatMessageContent]) -> bool:
    return any(isinstance(item, FunctionCallContent) for m in chunks for item in m.items)


def _merged(chunks: Sequence[StreamingChatMessageContent]) -> StreamingChatMessageContent | None:
    """The chunks of one streamed answer (first choice) as one message."""
    first = [m for m in chunks if m.choice_index == 0]
    if not first:
        return None
    try:
        return sum(first[1:], first[0])
    except Exception:  # chunks SK cannot add up (from different models): their text is enough
        return sk_reply("".join(m.content or "" for m in first), chunk=True)


def _turn_message(turn: TurnResult, ai_model_id: str, text: str | None = None) -> Any:
    """The answer of a pipeline turn as an SK message (a streaming chunk when ``text`` is given),
    with the turn's usage in ``metadata["usage"]``."""
    chosen = chosen_candidate(turn)
    return sk_reply(
        turn.text if text is None else text,
        turn.usage,
        chosen.finish_reason if chosen else None,
        chunk=text is not None,
        ai_model_id=ai_model_id,
        metadata={METADATA_KEY: turn_summary(turn)},
    )


def _turn_stream(turn: TurnResult, ai_model_id: str) -> Iterator[list[StreamingChatMessageContent]]:
    """A finished turn's text in word-sized chunks, the last one carrying the metadata."""
    pieces = text_chunks(turn.text) or [""]
    for piece in pieces[:-1]:
        yield [sk_reply(piece, chunk=True, ai_model_id=ai_model_id)]
    yield [_turn_message(turn, ai_model_id, pieces[-1])]
