"""Test doubles for the core suite: a scripted chat model, a scripted reviewer, plugin helpers.

Doubles are used only where a test needs exact call counts or must force a fault (a model that
raises, stalls or answers garbage); everything else is the real library.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pluggy

from persona_plugins import (
    Completion,
    Finding,
    Message,
    Persona,
    Resolution,
    Review,
    Usage,
    hookimpl,
)

#: Usage every scripted call reports, so sums over calls are easy to check.
CALL_USAGE = Usage(input_tokens=10, output_tokens=5)

Reply = Any  # str | Completion | BaseException | Callable[[list[Message]], Any] | anything else


class ScriptedModel:
    """A :class:`~persona_plugins.ChatModel` that answers from a script and records every call.

    Each call takes the next reply from ``replies`` (then ``default`` forever). A reply may be:

    - a string: returned as a :class:`Completion` with :data:`CALL_USAGE`;
    - an exception instance: raised;
    - a callable: called with the messages, its result (awaited if needed) used as the reply;
    - :class:`Raw`: its value returned as it is (garbage such as a bare string);
    - anything else (a ``Completion``, or garbage such as a dict): returned as it is.
    """

    model_name = "scripted"
    provider_name = "test-double"

    def __init__(
        self,
        *replies: Reply,
        default: Reply = "4",
        supports_multiple_system_messages: bool | None = None,
    ):
        self.replies = list(replies)
        self.default = default
        self.calls: list[list[Message]] = []
        self.settings: list[dict[str, Any]] = []
        if supports_multiple_system_messages is not None:
            self.supports_multiple_system_messages = supports_multiple_system_messages

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        self.calls.append(list(messages))
        self.settings.append(dict(settings))
        reply = self.replies.pop(0) if self.replies else self.default
        return await _materialise(reply, list(messages))


class Raw:
    """A reply returned exactly as it is, even a string: for models that answer garbage."""

    def __init__(self, value: Any):
        self.value = value


async def _materialise(reply: Reply, messages: list[Message]) -> Any:
    if isinstance(reply, Raw):
        return reply.value
    while callable(reply) and not isinstance(reply, (BaseException, type)):
        reply = reply(messages)
        if inspect.isawaitable(reply):
            reply = await reply
    if isinstance(reply, BaseException):
        raise reply
    if isinstance(reply, str):
        return Completion(text=reply, usage=CALL_USAGE, finish_reason="stop", model="scripted-1")
    return reply


def has_persona(messages: Sequence[Message]) -> bool:
    """True when the conversation starts with a system message (the persona prompt)."""
    return bool(messages) and messages[0].role == "system"


def by_prompt(*, persona: Reply, neutral: Reply) -> Callable[[list[Message]], Reply]:
    """A reply that depends on whether the call carries the persona (a leading system message)."""

    def reply(messages: list[Message]) -> Reply:
        return persona if has_persona(messages) else neutral

    return reply


def stall(_messages: list[Message]) -> Any:
    """A reply that never comes: the call waits forever (until it is cancelled)."""
    return asyncio.Event().wait()


class ScriptedRefiner:
    """A reviewer whose revision is ``revise(draft)``; None or an unchanged draft asks no change."""

    description = "a scripted reviewer for tests"

    def __init__(
        self,
        name: str,
        revise: Callable[[str], str | None],
        *,
        model_prompt: str | None = None,
        error: BaseException | None = None,
    ):
        self.name = name
        self.revise = revise
        self.model_prompt = model_prompt
        self.error = error
        self.seen: list[str] = []

    async def review(
        self,
        messages: Sequence[Message],
        draft: str,
        persona: Persona | None,
        model: Any,
    ) -> Review:
        self.seen.append(draft)
        if self.model_prompt is not None:
            await model.complete([Message.user(self.model_prompt)])
        if self.error is not None:
            raise self.error
        revision = self.revise(draft)
        if revision is None or revision == draft:
            return Review(refiner=self.name, needs_change=False, feedback="fine as it is")
        return Review(refiner=self.name, needs_change=True, feedback="revised", revision=revision)


@contextmanager
def registered(pm: pluggy.PluginManager, *plugins: object) -> Iterator[None]:
    """Register plugins for the duration of a ``with`` block, and always unregister them."""
    for plugin in plugins:
        pm.register(plugin)
    try:
        yield
    finally:
        for plugin in plugins:
            if pm.is_registered(plugin):
                pm.unregister(plugin)


def without_hooks(pm: pluggy.PluginManager, *hook_names: str) -> pluggy.PluginManager:
    """Unregister every plugin implementing one of ``hook_names``; returns ``pm``.

    Tests that pin down what the pipeline does with no judge, no refiners or no detectors use
    this, so that built-in plugins added later do not change what is being specified.
    """
    for hook_name in hook_names:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if pm.is_registered(impl.plugin):
                pm.unregister(impl.plugin)
    return pm


class FixedPersona:
    """A plugin whose ``register_personas`` adds the given personas."""

    def __init__(self, *personas: Persona):
        self.personas = personas

    @hookimpl
    def register_personas(self, register: Callable[[Persona], None]) -> None:
        for persona in self.personas:
            register(persona)


class FixedResolution:
    """A ``resolve_findings`` plugin that always decides ``action`` (with ``text``), so tests of
    what an adapter does with a decision do not depend on the built-in policy."""

    def __init__(self, action: str, text: str | None = None):
        self.action = action
        self.text = text
        self.resolved: list[dict[str, Any]] = []

    @hookimpl
    def resolve_findings(
        self, messages: Sequence[Message], response: str, findings: Sequence[Finding]
    ) -> Resolution:
        self.resolved.append(
            {"messages": list(messages), "response": response, "findings": list(findings)}
        )
        return Resolution(action=self.action, text=self.text, reason=f"test: {self.action}")
