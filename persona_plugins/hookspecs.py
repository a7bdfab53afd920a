"""Hook specifications: the stages of a turn, in order.

Every hook is synchronous and cheap. A hook whose work needs the model returns an awaitable (for
example a coroutine from an ``async def`` helper); the pipeline awaits it. Implementations may
accept fewer arguments than the specification, so new arguments never break a plugin.

Shapes:

- *decide* (``firstresult=True``): the first non-None result wins;
- *collect*: every implementation's result is kept (None results are dropped);
- *register*: the hook receives a ``register(...)`` callback;
- *configure* (historic): called once per pipeline, and for plugins registered later too.

Only :class:`persona_plugins.PersonaPipeline` calls ``pm.hook.*``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from persona_plugins.config import PipelineConfig
    from persona_plugins.model import ChatModel, Message
    from persona_plugins.persona import Persona
    from persona_plugins.results import (
        Candidate,
        Finding,
        Judgement,
        PersonaChoice,
        RefinementPlan,
        Refiner,
        RegisterExtractor,
        RegisterPersona,
        RegisterRefiner,
        Resolution,
        Review,
        TurnResult,
    )

PROJECT_NAME = "persona_plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------------------------


@hookspec(historic=True)
def configure(config: PipelineConfig) -> None:
    """Receive the configuration of a new pipeline (configure, historic).

    Called once for every :class:`~persona_plugins.PersonaPipeline` created, and replayed to plugins
    registered afterwards (once per pipeline created on that plugin manager so far).

    :param config: the pipeline's configuration (read-only).
    """


@hookspec
def register_personas(register: RegisterPersona) -> None:
    """Add personas to the catalog (register).

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
    model: ChatModel,
    personas: dict[str, Persona],
) -> PersonaChoice | Awaitable[PersonaChoice | None] | None:
    """Choose the persona for this turn (decide).

    Stops at first non-None result.

    :param messages: the conversation as the caller passed it.
    :param config: the pipeline configuration (``persona`` and ``persona_mode`` matter here).
    :param model: the turn's model, for personas generated from the question.
    :param personas: the catalog, by name.
    :return: a :class:`~persona_plugins.results.PersonaChoice` (its ``persona`` may be None to
        answer neutrally), an awaitable of one, or None to leave the choice to other plugins.
    """


# ---------------------------------------------------------------------------------------------
# write the persona into the prompt
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def persona_system_prompt(persona: Persona, config: PipelineConfig) -> str | None:
    """Write the system prompt text that gives the model its persona (decide).

    Stops at first non-None result.

    :param persona: the persona chosen for this turn.
    :param config: the pipeline configuration (``persona_template`` selects a built-in template).
    :return: the text, or None to let another plugin write it.
    """


@hookspec(firstresult=True)
def inject_persona(
    messages: Sequence[Message],
    system_prompt: str,
    config: PipelineConfig,
    model: ChatModel,
) -> list[Message] | None:
    """Put the persona's system prompt into the conversation (decide).

    Stops at first non-None result.

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
    model: ChatModel,
    settings: dict[str, Any],
) -> Candidate | Awaitable[Candidate | None] | list[Candidate | Awaitable[Candidate]] | None:
    """Produce one or more candidate answers (collect).

    All implementations' awaitables are awaited concurrently.

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
def register_answer_extractors(register: RegisterExtractor) -> None:
    """Add answer extractors, used to tell whether candidates agree (register).

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
    model: ChatModel,
) -> Judgement | Awaitable[Judgement | None] | None:
    """Pick the best of two or more usable candidates (decide).

    Stops at first non-None result. Called only when more than one candidate is usable; with no
    implementation the first usable candidate is kept. Each candidate's ``answer`` holds its
    extracted final answer (see ``register_answer_extractors``), or None.

    :param messages: the conversation as the caller passed it.
    :param candidates: the usable candidates, in the order they were generated.
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration (``judge`` settings).
    :param model: the turn's model.
    :return: a :class:`~persona_plugins.results.Judgement` naming the chosen candidate.
    """


# ---------------------------------------------------------------------------------------------
# refine
# ---------------------------------------------------------------------------------------------


@hookspec
def register_refiners(register: RegisterRefiner) -> None:
    """Add reviewers that can refine a draft (register).

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
    model: ChatModel,
) -> RefinementPlan | Awaitable[RefinementPlan | None] | None:
    """Choose which reviewers run on the draft, and in which order (decide).

    Stops at first non-None result. Called only when ``config.refine`` is not ``off``.

    :param messages: the conversation as the caller passed it.
    :param draft: the answer to refine.
    :param refiners: the registered reviewers, by name.
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
    model: ChatModel,
) -> str | Awaitable[str | None] | None:
    """Merge reviews made in parallel into one revised draft (decide).

    Stops at first non-None result. Called for plans with ``parallel=True``.

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
def check_response(
    messages: Sequence[Message],
    response: str,
    persona: Persona | None,
    config: PipelineConfig,
    model: ChatModel,
) -> list[Finding] | Awaitable[list[Finding]] | None:
    """Look for harms in a response (collect).

    Called only when ``config.guard`` is not ``off``.

    :param messages: the conversation as the caller passed it.
    :param response: the text about to be returned.
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration (``detectors``).
    :param model: the turn's model, for optional model confirmation.
    :return: a list of :class:`~persona_plugins.results.Finding` (empty when clean), an
        awaitable of one, or None.
    """


@hookspec(firstresult=True)
def resolve_findings(
    messages: Sequence[Message],
    response: str,
    findings: Sequence[Finding],
    candidates: Sequence[Candidate],
    persona: Persona | None,
    config: PipelineConfig,
    model: ChatModel,
) -> Resolution | Awaitable[Resolution | None] | None:
    """Decide what to do with a response that has findings (decide).

    Stops at first non-None result. Called only when there are findings and ``config.guard`` is
    ``enforce``; in ``monitor`` mode findings are recorded and the response is allowed.

    :param messages: the conversation as the caller passed it.
    :param response: the text about to be returned.
    :param findings: everything ``check_response`` found.
    :param candidates: every candidate of the turn (a neutral one allows a fallback).
    :param persona: the persona of this turn, or None.
    :param config: the pipeline configuration.
    :param model: the turn's model, for a de-biased regeneration.
    :return: a :class:`~persona_plugins.results.Resolution`; an action of ``block`` makes the
        pipeline raise :class:`~persona_plugins.GuardrailViolation`.
    """


# ---------------------------------------------------------------------------------------------
# observe
# ---------------------------------------------------------------------------------------------


@hookspec
def on_turn_complete(result: TurnResult, config: PipelineConfig) -> None:
    """Observe a finished turn (collect); return values are ignored.

    :param result: everything the turn produced.
    :param config: the pipeline configuration.
    """
