"""What every built-in detector shares: reading its entry in ``config.detectors``
(:func:`detector_options`, owned by the guard stage), a ``detect`` that never raises, the
``check`` the guard stage runs and the ``register_detectors`` hooks (:class:`BuiltinDetector`,
:func:`register_builtin`), the model's yes/no second opinion on findings
(:meth:`BuiltinDetector.second_opinion`), and a stand-in for a missing model."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, NamedTuple

from opentelemetry import trace

from persona_plugins import semconv
from persona_plugins.guard import detector_options
from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import ChatModel, Completion, Message
from persona_plugins.persona import Persona
from persona_plugins.results import Finding, RegisterDetector
from persona_plugins.turn_model import TurnModel

__all__ = [
    "BuiltinDetector",
    "CheckCall",
    "CheckResult",
    "Decision",
    "NoModel",
    "ask_yes_no",
    "detector_options",
    "guarded",
    "record_decision",
    "register_builtin",
]

_log = logging.getLogger("persona_plugins.guardrails")


def guarded(name: str, detect: Callable[[], list[Finding]]) -> list[Finding]:
    """Run a detector for a direct caller of its ``detect`` method: a bug or an input it cannot
    handle yields no finding (and a log line), never an exception.

    The pipeline calls ``check`` instead, which lets an exception through: the guard stage runs
    each detector in isolation and records the failure, so that ``guard_errors="closed"`` can act
    on it.
    """
    try:
        return detect()
    except Exception:
        _log.warning("guardrail detector %r failed; it reports nothing", name, exc_info=True)
        return []


def record_decision(name: str, label: str, score: float | None = None) -> None:
    """Record a model check's decision (``confirmed``, ``rejected``, ``unreadable``) as a
    ``gen_ai.evaluation.result`` event on the current span (in a turn, the guard stage's).

    The event carries the check's name, the label and the finding's score, never any text, so
    it is safe with content capture off. Recording never raises.
    """
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {
            semconv.GEN_AI_EVALUATION_NAME: name,
            semconv.GEN_AI_EVALUATION_SCORE_LABEL: label,
        }
        if score is not None:
            attributes[semconv.GEN_AI_EVALUATION_SCORE_VALUE] = float(score)
        span.add_event(semconv.GEN_AI_EVALUATION_RESULT_EVENT, attributes)
    except Exception:  # instrumentation must never raise
        _log.debug("could not record the decision of %s", name, exc_info=True)


#: A model check's decision about one finding.
Decision = Literal["confirmed", "rejected", "unreadable"]


async def ask_yes_no(model: ChatModel, prompt: str) -> Decision:
    """The model's YES (``confirmed``) or NO (``rejected``) to ``prompt``; any other reply, or a
    failed call, is ``unreadable``. Markdown emphasis or quotes before the word are ignored."""
    try:
        completion = await model.complete([Message.user(prompt)], max_tokens=4)
        reply = completion.text.strip().lower() if isinstance(completion.text, str) else ""
    except Exception:
        return "unreadable"
    reply = reply.lstrip("*\"' ")
    if reply.startswith("yes"):
        return "confirmed"
    if reply.startswith("no"):
        return "rejected"
    return "unreadable"


#: What a detector's ``check`` returns: the findings, or an awaitable of them, or None when the
#: detector does not run.
CheckResult = list[Finding] | Awaitable[list[Finding]] | None


class CheckCall(NamedTuple):
    """The arguments of a :meth:`BuiltinDetector.check` call, less the configuration."""

    messages: Sequence[Message]
    response: str
    persona: Persona | None
    model: ChatModel


class BuiltinDetector:
    """The part every built-in detector shares: :meth:`detect` for direct callers (never raises),
    :meth:`check` for the guard stage (runs only when the detector is listed in
    ``config.detectors``) and the ``register_detectors`` hook an instance registered as a plugin
    answers. A subclass sets ``name`` and implements :meth:`_detect`; it overrides :meth:`_check`
    where the detector's options (or a missing persona) change what it does.
    """

    name: str

    #: The options the detector reads after its name (``"stereotype:confirm"``); a config naming
    #: another is a ``ConfigError`` (None: the detector does not say, anything is accepted).
    options: frozenset[str] | None = frozenset()

    #: The guard stage may run :meth:`check` in a worker thread (for long texts, see
    #: :data:`persona_plugins.guard.OFF_LOOP_CHARS`): it keeps no state of its own between calls.
    thread_safe = True

    def detect(
        self,
        response: str,
        *,
        messages: Sequence[Message] = (),
        persona: Persona | None = None,
    ) -> list[Finding]:
        return guarded(self.name, lambda: self._detect(response, messages, persona))

    def _detect(
        self, response: str, messages: Sequence[Message], persona: Persona | None
    ) -> list[Finding]:
        raise NotImplementedError

    def check(
        self,
        messages: Sequence[Message],
        response: str,
        persona: Persona | None,
        config: Any,
        model: ChatModel,
    ) -> CheckResult:
        """The detector as the guard stage runs it (see :class:`~persona_plugins.Detector`)."""
        options = detector_options(config, self.name)
        if options is None:
            return None
        return self._check(options, CheckCall(messages, response, persona, model))

    def _check(self, options: frozenset[str], call: CheckCall) -> CheckResult:
        """:meth:`check` once the detector is known to be listed, with its options."""
        return self._detect(call.response, call.messages, call.persona)

    async def second_opinion(
        self,
        findings: Sequence[Finding],
        model: ChatModel,
        *,
        agent: str,
        check: str,
        prompt_for: Callable[[Finding], str | None],
        note: Callable[[Decision], dict[str, Any]],
    ) -> list[Finding]:
        """``findings`` after the model (as agent ``agent``) has answered YES or NO about each
        one ``prompt_for`` gives a prompt for (the others are kept as they are): a ``rejected``
        finding is dropped, the others get ``note(decision)`` in their metadata. Each decision
        is recorded as ``<name>:<check>`` (:func:`record_decision`)."""
        judge = TurnModel.wrap(model).as_agent(agent)
        kept: list[Finding] = []
        for finding in findings:
            prompt = prompt_for(finding)
            if prompt is None:
                kept.append(finding)
                continue
            decision = await ask_yes_no(judge, prompt)
            record_decision(f"{self.name}:{check}", decision, finding.score)
            if decision != "rejected":
                metadata = {**finding.metadata, **note(decision)}
                kept.append(finding.model_copy(update={"metadata": metadata}))
        return kept

    #: The former ``check_response`` hook method, kept for direct callers.
    check_response = check

    @hookimpl
    def register_detectors(self, register: RegisterDetector) -> None:
        # An instance registered as a plugin replaces the built-in detector of the same name.
        register(self)


def register_builtin(detector: BuiltinDetector) -> Callable[[RegisterDetector], None]:
    """The module-level ``register_detectors`` hook that registers a built-in ``detector``."""

    @hookimpl(tryfirst=True)
    def register_detectors(register: RegisterDetector) -> None:
        # tryfirst: the built-in registers before any plugin, so a plugin's detector of the same
        # name replaces it.
        register(detector)

    return register_detectors


class NoModel:
    """Stands in for a model where none is configured (the ``check`` command, team checks without
    a model): any call fails, so optional model checks fall back to the offline heuristics."""

    model_name = "none"

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        raise RuntimeError("no model is configured for guardrail model checks")
