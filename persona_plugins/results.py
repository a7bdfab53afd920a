"""What each stage of a turn produces, and the :class:`TurnResult` that carries all of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from persona_plugins.errors import GuardrailViolation
from persona_plugins.model import Message, Usage
from persona_plugins.persona import Persona

if TYPE_CHECKING:
    from persona_plugins.config import PipelineConfig
    from persona_plugins.turn_model import TurnModel

__all__ = [
    "Candidate",
    "Detector",
    "Finding",
    "GuardOutcome",
    "Judgement",
    "PersonaChoice",
    "PreparedPrompt",
    "RefinementPlan",
    "Refiner",
    "Resolution",
    "Review",
    "StageError",
    "TurnResult",
    "Verdict",
]

GuardAction = Literal["allow", "annotate", "fallback", "regenerate", "block"]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PersonaChoice(_Result):
    """The persona a ``select_persona`` implementation chose, and where it came from.

    ``source`` is free text such as ``"config"``, ``"generated"`` or ``"fallback"``; ``note``
    explains a fallback (for example why a generated persona was unusable).
    """

    persona: Persona | None
    source: str = "plugin"
    note: str | None = None


class Candidate(_Result):
    """One candidate answer: the persona answer, the neutral answer, or any a plugin adds.

    ``answer`` is the extracted final answer used to compare candidates; ``error`` is set when the
    candidate failed; ``notes`` records problems it recovered from (they also appear in
    ``TurnResult.errors``).
    """

    name: str
    text: str = ""
    persona: str | None = None
    answer: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model_calls: int = 0
    finish_reason: str | None = None
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    _exception: BaseException | None = PrivateAttr(default=None)

    @property
    def exception(self) -> BaseException | None:
        """The exception behind ``error``, when the candidate's model call raised."""
        return self._exception

    def with_exception(self, exc: BaseException) -> Candidate:
        self._exception = exc
        return self

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.text.strip())


class Verdict(_Result):
    """One judge call: the order the candidates were shown in and the candidate it picked."""

    order: list[str]
    choice: str | None
    certainty: int | None = None
    raw: str = ""
    attempt: int = 0


class Judgement(_Result):
    """The outcome of ``judge_candidates``: which candidate won, and how that was decided."""

    chosen: str
    verdicts: list[Verdict] = Field(default_factory=list)
    consistent: bool = False
    retries: int = 0
    fallback: bool = False
    model_calls: int = 0
    reason: str = ""


class Review(_Result):
    """One reviewer's feedback on a draft."""

    refiner: str
    round: int = 1
    needs_change: bool = False
    feedback: str = ""
    revision: str | None = None
    error: str | None = None


class RefinementPlan(_Result):
    """Which reviewers run, in which order, and why."""

    refiners: list[str]
    rationale: str = ""
    source: str = "planner"
    parallel: bool = False


@runtime_checkable
class Refiner(Protocol):
    """A reviewer registered through ``register_refiners``.

    ``review`` reads the conversation and the current draft and returns a :class:`Review`; when
    ``needs_change`` is true its ``revision`` replaces the draft.
    """

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def review(
        self,
        messages: Sequence[Message],
        draft: str,
        persona: Persona | None,
        model: TurnModel,
    ) -> Awaitable[Review]: ...


class Finding(_Result):
    """Something a guardrail detector found in a response."""

    detector: str
    message: str
    severity: Literal["info", "warning", "high"] = "warning"
    score: float | None = None
    evidence: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """A guardrail detector registered through ``register_detectors``.

    ``check`` reads a response (and the conversation, persona and configuration) and returns the
    findings, an empty list when the response is clean; it may be ``async``. It runs when
    ``config.guard`` is not ``off`` and its ``name`` is listed in ``config.detectors`` (an entry may
    carry options after a colon, ``"name:option"``: read them with
    :func:`persona_plugins.guardrails.detector_options`). The pipeline runs each detector in
    isolation: one that raises is recorded in the result's ``errors`` and ``failed_detectors``,
    and the others' findings stand.
    """

    @property
    def name(self) -> str: ...

    def check(
        self,
        messages: Sequence[Message],
        response: str,
        persona: Persona | None,
        config: PipelineConfig,
        model: TurnModel,
    ) -> Sequence[Finding] | Awaitable[Sequence[Finding] | None] | None: ...


class Resolution(_Result):
    """What ``resolve_findings`` decided to do with a response that has findings."""

    action: GuardAction
    text: str | None = None
    reason: str = ""


class PreparedPrompt(_Result):
    """The first two stages of a turn: the persona chosen and the prompt that carries it."""

    persona: Persona | None
    persona_source: str
    persona_note: str | None = None
    system_prompt: str | None = None
    prompt: list[Message]


class StageError(_Result):
    """A plugin or model failure that the pipeline recovered from.

    ``plugin`` names the plugin or detector at fault when the stage runs each one in isolation
    (the guard's detectors); None otherwise.
    """

    stage: str
    error: str
    error_type: str
    plugin: str | None = None


class GuardOutcome(_Result):
    """What :meth:`~persona_plugins.PersonaPipeline.guard` did with one response.

    Attributes:
        text: the text to use: the response itself, or the annotated, fallen-back or regenerated
            text that replaces it. For a blocked response, the response itself (do not show it).
        response: the text that was checked.
        findings: every finding of every detector that ran, in detector order.
        resolution: what ``resolve_findings`` decided (``enforce`` mode with findings), or the
            block that ``guard_errors="closed"`` imposes when a detector failed; else None.
        action: the action taken: ``allow``, ``annotate``, ``fallback``, ``regenerate`` or
            ``block``.
        errors: the failures recovered from (a detector or resolver that raised).
        failed_detectors: the detectors that raised, so did not check the response.
    """

    text: str
    response: str
    findings: list[Finding] = Field(default_factory=list)
    resolution: Resolution | None = None
    action: GuardAction = "allow"
    errors: list[StageError] = Field(default_factory=list)
    failed_detectors: list[str] = Field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    def violation(self, messages: Sequence[Message] = ()) -> GuardrailViolation:
        """The :class:`~persona_plugins.GuardrailViolation` to raise for a blocked response,
        carrying the findings, the conversation and the blocked text."""
        reason = self.resolution.reason if self.resolution is not None else ""
        return GuardrailViolation(
            reason or "the response was blocked by the guardrails",
            findings=self.findings,
            messages=messages,
            response=self.response,
        )


class TurnResult(_Result):
    """Everything a turn produced: the final text and all that led to it.

    Attributes:
        text: the final answer.
        persona: the persona used (None when answering neutrally).
        persona_source: where it came from (``config``, ``generated``, ``fallback``, a plugin).
        system_prompt: the persona text injected, if any.
        prompt: the messages sent for the persona candidate.
        candidates: every candidate generated; ``chosen`` names the one kept.
        judgement: the judge's decision when there was more than one candidate.
        refinement_plan, reviews: the refinement plan and every review, in order.
        findings, action: guardrail findings and the action taken.
        failed_detectors: guardrail detectors that raised, so did not check the response.
        usage, model_calls: summed over every model call of the turn.
        errors: failures recovered from (a plugin that raised, a candidate that failed).
    """

    text: str
    persona: Persona | None = None
    persona_source: str | None = None
    persona_note: str | None = None
    system_prompt: str | None = None
    prompt: list[Message] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    chosen: str | None = None
    judgement: Judgement | None = None
    refinement_plan: RefinementPlan | None = None
    reviews: list[Review] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    action: GuardAction = "allow"
    failed_detectors: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model_calls: int = 0
    errors: list[StageError] = Field(default_factory=list)
    duration_s: float = 0.0


RegisterPersona = Callable[[Persona], None]
RegisterExtractor = Callable[[str, Callable[[str], "str | None"]], None]
RegisterRefiner = Callable[[Refiner], None]
RegisterDetector = Callable[[Detector], None]
#: ``recheck(text)``: every detector run on ``text`` as on the response (same conversation and
#: persona; ``persona=None`` checks it as a neutral answer).
Recheck = Callable[..., Awaitable[list[Finding]]]
#: ``regenerate(instruction, **settings)``: the conversation answered once more through the
#: persona stages, with ``instruction`` added to the persona's system prompt; returns the text.
Regenerate = Callable[..., Awaitable[str]]
