"""Hook specifications: the stages of a turn, in order.

Shapes (each hook's docstring names its own):

- *decide* (``firstresult=True``): the first non-None result wins; None defers to the next
  implementation (a plugin registered later is asked first);
- *collect*: every implementation's result is kept (None results are dropped);
- *register*: the hook receives a ``register(...)`` callback, once per pipeline built;
- *set-up*: ``configure``, called once per plugin manager and configuration.

Every hook may be implemented ``async def``, or return an awaitable: the pipeline awaits it
(:mod:`persona_plugins.hookcalls`), and an awaitable that resolves to None defers exactly like a
plain None. Implementations may accept fewer arguments than the specification, so new arguments
never break a plugin. The ``model`` a hook receives is a :class:`~persona_plugins.TurnModel`:
the turn's model, whose ``as_agent(name)`` traces calls as made by the agent ``name``.

When an implementation raises, its stage is skipped and the failure is recorded in
``TurnResult.errors`` (the turn goes on); each docstring says what skipping means for that stage.
:class:`~persona_plugins.GuardrailViolation` and :class:`~persona_plugins.ModelCallError` are never
swallowed. Only the pipeline calls ``pm.hook.*``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from persona_plugins.config import PipelineConfig
    from persona_plugins.model import Message
    from persona_plugins.persona import Persona
    from persona_plugins.results import (
        Candidate,
        Finding,
        Judgement,
        PersonaChoice,
        Recheck,
        RefinementPlan,
        Refiner,
        Regenerate,
        RegisterDetector,
        RegisterExtractor,
        RegisterPersona,
        RegisterRefiner,
        Resolution,
        Review,
        TurnResult,
    )
    from persona_plugins.turn_model import TurnModel

PROJECT_NAME = "persona_plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------------------------


@hookspec
def configure(config: PipelineConfig) -> Awaitable[None] | None:
    """Prepare for a configuration (set-up); once per plugin manager and configuration.

    Called when a pipeline is built with a configuration this plugin manager has not announced to
    this plugin yet: building many pipelines with one configuration calls it once, and a plugin
    registered later sees it when the next pipeline is built. Nothing is kept per pipeline.
    May be ``async`` (run to completion while the pipeline is built). The return value is
    ignored.

    :param config: the pipeline's configuration (read-only).
    :raises: an implementation that raises makes building the pipeline fail with
        :class:`~persona_plugins.PluginError` naming the plugin; it is asked again next time.
    """


@hookspec
def register_personas(register: RegisterPersona) -> Awaitable[None] | None:
    """Add personas to the catalog (register).

    Called once per pipeline built; may be ``async`` (run to completion). An implementation that
    raises (or registers something that is not a persona) makes building the pipeline fail.

    :param register: call ``register(persona)`` once per :class:`~persona_plugins.Persona`. A name
        registered twice keeps the later registration.
    """


# ---------------------------------------------------------------------------------------------
# choose the persona
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def select_persona(
    messages: Sequence[Message],
    config: PipelineConfig,
    model: TurnModel,
    personas: dict[str, Persona],
) -> PersonaChoice | Awaitable[PersonaChoice | None] | None:
    """Choose the persona for this turn (decide).

    Stops at first non-None result. May be ``async``. When every implementation returns None, or
    one raises (recorded, stage ``select_persona``), the configured persona is used.

    :param messages: the conversation as the caller passed it.
    :param config: the pipeline configuration (``persona`` and ``persona_mode`` matter here).
    :param model: the turn's model, for personas generated from the question.
    :param personas: the catalog, by name.
    :return: a :class:`~persona_plugins.results.PersonaChoice` (its ``persona`` may be None to
        answer neutrally), or None to leave the choice to other plugins.
    """


# ---------------------------------------------------------------------------------------------
# write the persona into the prompt
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def persona_system_prompt(
    persona: Persona, config: PipelineConfig
) -> str | Awaitable[str | None] | None:
    """Write the system prompt text that gives the model its persona (decide).

    Stops at first non-None result. May be ``async``. When every implementation returns None, or
    one raises (recorded, stage ``inject_persona``), nothing is injected: the turn answers the
    conversation as it is.

    :param persona: the persona chosen for this turn.
    :param config: the pipeline configuration (``persona_template`` selects a built-in template).
    :return: the text, or None to let another plugin write it.
    """


@hookspec(firstresult=True)
def inject_persona(
    messages: Sequence[Message],
    system_prompt: str,
    config: PipelineConfig,
    model: TurnModel,
) -> list[Message] | Awaitable[list[Message] | None] | None:
    """Put the persona's system prompt into the conversation (decide).

    Stops at first non-None result. May be ``async``. When every implementation returns None the
    conversation is sent unchanged; when one raises (recorded, stage ``inject_persona``), nothing
    is injected.

    :param messages: the conversation as the caller passed it (never modified in place).
    :param system_prompt: the text from ``persona_system_prompt``.
    :param config: the pipeline configuration.
    :param model: the turn's model (``supports_multiple_system_messages`` is read from it).
    :return: the new list of messages to send, or None to let another plugin decide.
    """


# ---------------------------------------------------------------------------------------------
# produce candidates
# ---------------------------------------------------------------------------------------------


@hookspec
def generate_candidates(
    messages: Sequence[Message],
    prompt: Sequence[Message],
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
    settings: dict[str, Any],
) -> Candidate | Awaitable[Candidate | None] | list[Candidate | Awaitable[Candidate]] | None:
    """Produce one or more candidate answers (collect).

    May be ``async``; all implementations' awaitables are awaited concurrently. None adds no
    candidate. When an implementation raises (recorded, stage ``generate_candidates``) the stage
    is skipped and the prompt is answered directly, as when no candidate was produced.

    :param messages: the conversation as the caller passed it (no persona).
    :param prompt: the conversation with the persona injected.
    :param persona: the persona chosen for this turn, or None.
    :param config: the pipeline configuration (``ensemble`` decides which built-ins answer).
    :param model: the turn's model.
    :param settings: generation settings for ``model.complete`` (``max_tokens`` ...).
    :return: a :class:`~persona_plugins.results.Candidate`, an awaitable of one, a list of
        either, or None. A candidate whose call failed carries ``error`` instead of ``text``.
    """


# ---------------------------------------------------------------------------------------------
# choose among candidates
# ---------------------------------------------------------------------------------------------


@hookspec
def register_answer_extractors(register: RegisterExtractor) -> Awaitable[None] | None:
    """Add answer extractors, used to tell whether candidates agree (register).

    Called once per pipeline built; may be ``async`` (run to completion). An implementation that
    raises makes building the pipeline fail.

    :param register: call ``register(name, extractor)``, where ``extractor(text)`` returns the
        normalised final answer of a candidate's text, or None when it finds none. The
        ``answer_format`` config field names the extractor to use (``auto`` guesses among
        ``number``, ``choice``, ``yes_no`` and ``text``).
    """


@hookspec(firstresult=True)
def judge_candidates(
    messages: Sequence[Message],
    candidates: Sequence[Candidate],
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
) -> Judgement | Awaitable[Judgement | None] | None:
    """Pick the best of two or more usable candidates (decide).

    Stops at first non-None result. May be ``async``. Called only when more than one candidate is
    usable; each candidate's ``answer`` holds its extracted final answer (see
    ``register_answer_extractors``), or None. When every implementation returns None, or one
    raises (recorded, stage ``judge_candidates``), the first usable candidate is kept.

    :param messages: the conversation as the caller passed it.
    :param candidates: the usable candidates, in the order they were generated.
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration (``judge`` settings).
    :param model: the turn's model.
    :return: a :class:`~persona_plugins.results.Judgement` naming the chosen candidate, or None
        to leave the choice to other plugins.
    """


# ---------------------------------------------------------------------------------------------
# refine
# ---------------------------------------------------------------------------------------------


@hookspec
def register_refiners(register: RegisterRefiner) -> Awaitable[None] | None:
    """Add reviewers that can refine a draft (register).

    Called once per pipeline built; may be ``async`` (run to completion). An implementation that
    raises (or registers an object without ``name`` and ``review``) makes building the pipeline
    fail.

    :param register: call ``register(refiner)`` once per
        :class:`~persona_plugins.results.Refiner`.
    """


@hookspec(firstresult=True)
def plan_refinement(
    messages: Sequence[Message],
    draft: str,
    refiners: dict[str, Refiner],
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
) -> RefinementPlan | Awaitable[RefinementPlan | None] | None:
    """Choose which reviewers run on the draft, and in which order (decide).

    Stops at first non-None result. May be ``async``. Called only when ``config.refine`` is not
    ``off`` and reviewers are registered. When every implementation returns None, or one raises
    (recorded, stage ``refine``), the draft is kept unrefined.

    :param messages: the conversation as the caller passed it.
    :param draft: the answer to refine.
    :param refiners: the registered reviewers that ``config.refiners`` names, by name.
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration (``refine``, ``refiners``, ``max_rounds``).
    :param model: the turn's model.
    :return: a :class:`~persona_plugins.results.RefinementPlan`; an empty plan skips refinement.
    """


@hookspec(firstresult=True)
def merge_reviews(
    messages: Sequence[Message],
    draft: str,
    reviews: Sequence[Review],
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
) -> str | Awaitable[str | None] | None:
    """Merge reviews made in parallel into one revised draft (decide).

    Stops at first non-None result. May be ``async``. Called for plans with ``parallel=True``.
    None (from every implementation) keeps the draft; an implementation that raises ends the
    refine stage (recorded, stage ``refine``) with the unrefined draft.

    :param messages: the conversation as the caller passed it.
    :param draft: the draft the reviewers saw.
    :param reviews: the reviews that ask for a change.
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration.
    :param model: the turn's model.
    :return: the merged draft, or None to keep the draft.
    """


# ---------------------------------------------------------------------------------------------
# guard
# ---------------------------------------------------------------------------------------------


@hookspec
def register_detectors(register: RegisterDetector) -> Awaitable[None] | None:
    """Add guardrail detectors (register).

    Called once per pipeline built; may be ``async`` (run to completion). An implementation that
    raises (or registers an object without ``name`` and ``check``) makes building the pipeline
    fail. A registered detector runs when ``config.guard`` is not ``off`` and its name is listed
    in ``config.detectors``; the pipeline runs each detector in isolation (see
    :class:`~persona_plugins.results.Detector`).

    :param register: call ``register(detector)`` once per detector: an object with a ``name``
        and a ``check(messages, response, persona, config, model)`` method (sync or ``async``)
        returning a list of :class:`~persona_plugins.results.Finding`. A name registered twice
        keeps the later registration.
    """


@hookspec
def check_response(
    messages: Sequence[Message],
    response: str,
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
) -> list[Finding] | Awaitable[list[Finding] | None] | None:
    """Look for harms in a response (collect).

    Prefer ``register_detectors`` for new detectors; this hook keeps working. Called when
    ``config.guard`` is not ``off``, whatever ``config.detectors`` says. May be ``async``. Each
    implementation is called on its own: one that raises is recorded in the result's ``errors``
    (stage ``check_response``, with the plugin's name) and ``failed_detectors``, and the others'
    findings stand (``guard_errors="closed"`` then blocks the response in ``enforce`` mode).

    :param messages: the conversation as the caller passed it.
    :param response: the text about to be returned.
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration (``detectors``).
    :param model: the turn's model, for optional model confirmation.
    :return: a list of :class:`~persona_plugins.results.Finding` (empty when clean), or None.
    """


@hookspec(firstresult=True)
def resolve_findings(
    messages: Sequence[Message],
    response: str,
    findings: Sequence[Finding],
    candidates: Sequence[Candidate],
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
    recheck: Recheck,
    regenerate: Regenerate,
) -> Resolution | Awaitable[Resolution | None] | None:
    """Decide what to do with a response that has findings (decide).

    Stops at first non-None result. May be ``async``. Called only when there are findings and
    ``config.guard`` is ``enforce``; in ``monitor`` mode findings are recorded and the response is
    allowed. When every implementation returns None the response is allowed; when one raises
    (recorded, stage ``resolve_findings``) it is allowed too, or blocked with
    ``guard_errors="closed"``.

    :param messages: the conversation as the caller passed it.
    :param response: the text about to be returned.
    :param findings: everything the detectors found.
    :param candidates: every candidate of the turn (a neutral one allows a fallback).
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration.
    :param model: the turn's model.
    :param recheck: ``await recheck(text)`` runs every detector (built-in, registered and
        ``check_response``) on another text, as on the response; ``recheck(text, persona=None)``
        checks it as a neutral answer. Returns the findings.
    :param regenerate: ``await regenerate(instruction, **settings)`` answers the conversation
        once more through the persona stage (the persona plugins write and place the persona's
        system prompt, with ``instruction`` after it) and returns the new text; it raises what
        the model call raises.
    :return: a :class:`~persona_plugins.results.Resolution`; an action of ``block`` makes the
        pipeline raise :class:`~persona_plugins.GuardrailViolation`. None leaves the decision to
        other plugins.
    """


# ---------------------------------------------------------------------------------------------
# observe
# ---------------------------------------------------------------------------------------------


@hookspec
def on_turn_complete(result: TurnResult, config: PipelineConfig) -> Awaitable[None] | None:
    """Observe a finished turn (collect); return values are ignored.

    May be ``async`` (awaited before the turn returns). An implementation that raises is recorded
    in the result's ``errors`` (stage ``on_turn_complete``); the answer is unchanged.

    :param result: everything the turn produced.
    :param config: the pipeline configuration.
    """
