"""What every framework adapter needs, written once, with no framework import.

An adapter translates the framework's messages, calls the pipeline and translates the answer back.
The steps in between are the same whatever the framework, so they live here:

- :func:`text_chunks`: a finished turn's text as stream chunks (word-sized, whitespace kept);
- :func:`framework_errors`: a failed turn raises the framework client's own exception;
- :func:`with_timeout` and :func:`timed_steps`: the per-call timeout, never swallowing a
  cancellation;
- :func:`chosen_candidate`, :func:`turn_summary`: reading a :class:`~persona_plugins.TurnResult`;
- :class:`Tally`: the calls and tokens an adapter object has spent;
- :func:`messages_as_sent`: the conversation with the persona, for synchronous token counting;
- :func:`passed_through_turn`: the result of a call the framework's own client answered (a tool
  call, a structured reply), with the persona injected and the tool calls noted;
- :func:`finish_reply`: the rest of a turn for a text reply the framework's own client made (an
  agent with tools that answered in text): refinement when configured, then the guard.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from persona_plugins.config import PipelineConfig
from persona_plugins.errors import ModelCallError
from persona_plugins.injection import inject_persona, render_persona
from persona_plugins.model import ChatModel, Completion, Message, Usage
from persona_plugins.persona import Persona
from persona_plugins.results import Candidate, PreparedPrompt, TurnResult

if TYPE_CHECKING:
    from persona_plugins.pipeline import PersonaPipeline

__all__ = [
    "TOOL_CALLS",
    "Tally",
    "chosen_candidate",
    "finish_reply",
    "framework_errors",
    "messages_as_sent",
    "passed_through_turn",
    "rewrites_replies",
    "text_chunks",
    "timed_steps",
    "turn_summary",
    "with_timeout",
]

T = TypeVar("T")

#: The key under which a passed-through turn's candidate notes its tool calls (``metadata``).
TOOL_CALLS = "tool_calls"

_CHUNK = re.compile(r"\S+\s*|\s+")


# -- streaming a finished turn --------------------------------------------------------------------


def text_chunks(text: str) -> list[str]:
    """``text`` cut into word-sized stream chunks that join back into exactly ``text``.

    >>> text_chunks("Aye,  two and\\ntwo.")
    ['Aye,  ', 'two ', 'and\\n', 'two.']
    """
    return _CHUNK.findall(text)


# -- errors and timeouts --------------------------------------------------------------------------


async def framework_errors(call: Awaitable[T]) -> T:
    """Await a pipeline call; when every model call of the turn failed, raise the framework
    client's own exception (the cause of the :class:`~persona_plugins.ModelCallError`), unchanged,
    since that is what framework users catch and retry on. A cancellation is never unwrapped."""
    try:
        return await call
    except ModelCallError as exc:
        cause = exc.__cause__
        if cause is None or isinstance(cause, asyncio.CancelledError):
            raise
        raise cause from None


async def _timeout_by_waiting(call: Awaitable[T], seconds: float) -> T:
    """The timeout for Python 3.10, which has no ``asyncio.timeout``: the call runs as a task of
    its own, so a cancellation of the caller always propagates (and cancels the call)."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise asyncio.TimeoutError(f"no answer within {seconds} s")
    return task.result()


async def with_timeout(call: Awaitable[T], seconds: float | None) -> T:
    """Await ``call``, raising :class:`TimeoutError` after ``seconds`` (None or 0: no limit).

    A cancellation of the caller is never turned into a timeout nor swallowed (``asyncio.timeout``
    on Python 3.11+, a task of its own on 3.10).
    """
    if not seconds:
        return await call
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await call
    return await _timeout_by_waiting(call, seconds)  # pragma: no cover - Python 3.10


async def timed_steps(stream: AsyncIterator[T], seconds: float | None) -> AsyncIterator[T]:
    """The items of ``stream``, each one awaited under :func:`with_timeout`."""
    while True:
        try:
            item = await with_timeout(stream.__anext__(), seconds)
        except StopAsyncIteration:
            return
        yield item


# -- reading a turn -------------------------------------------------------------------------------


def chosen_candidate(turn: TurnResult) -> Candidate | None:
    """The candidate a turn kept (None when no candidate carries the chosen name)."""
    return next((c for c in turn.candidates if c.name == turn.chosen), None)


def turn_summary(turn: TurnResult) -> dict[str, Any]:
    """The short per-turn summary adapters attach to the framework's answer (its metadata)."""
    summary: dict[str, Any] = {
        "persona": turn.persona.name if turn.persona else None,
        "chosen": turn.chosen,
        "model_calls": turn.model_calls,
        "action": turn.action,
        "findings": len(turn.findings),
    }
    chosen = chosen_candidate(turn)
    if chosen is not None and chosen.metadata.get(TOOL_CALLS):
        summary[TOOL_CALLS] = len(chosen.metadata[TOOL_CALLS])
    return summary


@dataclass
class Tally:
    """Model calls and tokens an adapter object has spent, over every turn it handled."""

    calls: int = 0
    usage: Usage = field(default_factory=Usage)

    def add(self, usage: Usage, calls: int = 1) -> None:
        self.calls += calls
        self.usage = self.usage + usage


# -- turns the framework's own client answered ----------------------------------------------------


def messages_as_sent(
    config: PipelineConfig,
    messages: Sequence[Message],
    *,
    system_prompt: str | None = None,
    model: ChatModel | None = None,
) -> list[Message]:
    """The conversation as the model will receive it, persona included, computed without running
    a stage (token counting is synchronous, stages are not).

    The persona text is ``system_prompt`` (what the latest turn wrote), else the configured
    persona rendered with the configured template; it is placed as the built-in
    ``inject_persona`` places it (merged into a leading system message when ``model`` takes one
    system message only).
    """
    persona = config.persona
    if system_prompt is None and config.persona_mode != "none" and isinstance(persona, Persona):
        system_prompt = render_persona(persona, config.persona_template)
    if not system_prompt:
        return list(messages)
    placed: list[Message] = inject_persona(
        messages=messages,
        system_prompt=system_prompt,
        config=config,
        model=model,  # type: ignore[arg-type]
    )
    return placed


def passed_through_turn(
    prepared: PreparedPrompt,
    text: str,
    *,
    usage: Usage | None = None,
    model_calls: int = 1,
    finish_reason: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] = (),
) -> TurnResult:
    """The :class:`~persona_plugins.TurnResult` of a call the framework's own client answered
    with the persona injected and nothing else (a tool call, a structured reply): one
    ``persona`` candidate, whose ``metadata["tool_calls"]`` lists the calls the model asked for
    (``{"id", "name", "arguments"}`` each)."""
    usage = usage or Usage()
    candidate = Candidate(
        name="persona",
        text=text,
        persona=prepared.persona.name if prepared.persona else None,
        usage=usage,
        model_calls=model_calls,
        finish_reason=finish_reason,
        metadata={TOOL_CALLS: [dict(call) for call in tool_calls]} if tool_calls else {},
    )
    return TurnResult(
        text=text,
        persona=prepared.persona,
        persona_source=prepared.persona_source,
        persona_note=prepared.persona_note,
        system_prompt=prepared.system_prompt,
        prompt=prepared.prompt,
        candidates=[candidate],
        chosen=candidate.name,
        usage=usage,
        model_calls=model_calls,
    )


def rewrites_replies(config: PipelineConfig) -> bool:
    """True when a text reply may still change after the model wrote it (refinement or the guard
    is on), so an adapter must hold a passed-through reply back until :func:`finish_reply`."""
    return config.refine != "off" or config.guard != "off"


class _Counted:
    """A chat model that counts the calls and tokens made through it."""

    def __init__(self, model: ChatModel):
        self.model = model
        self.tally = Tally()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        completion = await self.model.complete(messages, **settings)
        self.tally.add(completion.usage)
        return completion


async def finish_reply(
    pipeline: PersonaPipeline,
    messages: Sequence[Message],
    prepared: PreparedPrompt,
    text: str,
    *,
    model: ChatModel,
    usage: Usage | None = None,
    model_calls: int = 1,
    finish_reason: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    structured: bool = False,
) -> TurnResult:
    """The rest of a turn for a text reply the framework's own client made with the persona
    injected: an agent with tools that answered without calling one, or answered after its tool
    results came back.

    Such a reply is the turn's persona candidate. It is refined when ``refine`` is on (the reviewers
    read the conversation, tool results included), then guarded with the pipeline's guard operation,
    exactly as a turn's answer: ``monitor`` records, ``enforce`` annotates, regenerates or blocks.
    There is no ensemble: the neutral candidate and the judge would need the tools too, and a tool
    call cannot be judged against a text. A structured (JSON) reply is left as it is, since any
    rewrite would break its format.

    :param messages: the conversation the reply answers, without the persona.
    :param prepared: what :meth:`~persona_plugins.PersonaPipeline.prepare` gave the call.
    :param model: the view of the framework client that reviewers and regeneration call (without
        tools).
    :param usage, model_calls, finish_reason, tool_calls: what the framework call cost and did
        (tool calls made earlier in the same call, by a framework's own function-calling loop).
    :return: the :class:`~persona_plugins.TurnResult`; usage and calls include the reviewers' and
        the guard's.
    :raises GuardrailViolation: when ``enforce`` blocks the reply.
    """
    turn = passed_through_turn(
        prepared,
        text,
        usage=usage,
        model_calls=model_calls,
        finish_reason=finish_reason,
        tool_calls=tool_calls,
    )
    config = pipeline.config
    if structured or not rewrites_replies(config) or not text.strip():
        return turn
    counted = _Counted(model)
    update: dict[str, Any] = {}
    errors = []
    if config.refine != "off":
        refined = await pipeline.refine(messages, text, persona=prepared.persona, model=counted)
        text = refined.text
        errors += refined.errors
        update.update(refinement_plan=refined.refinement_plan, reviews=refined.reviews)
    outcome = await pipeline.guard(
        text, messages, candidates=turn.candidates, persona=prepared.persona, model=counted
    )
    if outcome.blocked:
        raise outcome.violation(messages)
    update.update(
        text=outcome.text,
        findings=outcome.findings,
        action=outcome.action,
        failed_detectors=outcome.failed_detectors,
        errors=[*errors, *outcome.errors],
        usage=turn.usage + counted.tally.usage,
        model_calls=turn.model_calls + counted.tally.calls,
    )
    return turn.model_copy(update=update)
