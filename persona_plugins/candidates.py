"""Stage 3, produce candidates: the built-in persona and neutral answers.

With a persona, the persona candidate answers the persona prompt. The neutral candidate answers
the conversation as the caller passed it: it is the only candidate when there is no persona, and
the second one when ``ensemble="jekyll_hyde"``. Other plugins add candidates on the same hook.

:func:`produce_candidates` runs the stage: every ``generate_candidates`` implementation,
concurrently; when none produced a candidate, the prompt is answered directly; when every candidate
failed, the turn raises :class:`~persona_plugins.ModelCallError` (with the conversation on it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import ModelCallError
from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona
from persona_plugins.results import Candidate, StageError
from persona_plugins.turn_model import TurnModel

if TYPE_CHECKING:
    from persona_plugins.stages import TurnContext
    from persona_plugins.tracing import SafeSpan

__all__ = ["complete_candidate", "only_builtin_candidates", "produce_candidates"]


async def complete_candidate(
    name: str,
    model: ChatModel,
    messages: Sequence[Message],
    settings: dict[str, Any],
    *,
    persona: Persona | None = None,
) -> Candidate:
    """Ask the model once and wrap the answer (or the failure) as a :class:`Candidate`.

    A failing call becomes a candidate with ``error`` set, so the other candidates survive it.
    """
    caller = TurnModel.wrap(model).as_agent(f"{name}_candidate")
    try:
        completion = await caller.complete(messages, **settings)
    except Exception as exc:
        return Candidate(
            name=name,
            persona=persona.name if persona else None,
            model_calls=1,
            error=f"{type(exc).__name__}: {exc}",
        ).with_exception(exc)
    return Candidate(
        name=name,
        text=completion.text,
        persona=persona.name if persona else None,
        usage=completion.usage,
        model_calls=1,
        finish_reason=completion.finish_reason,
        error=None if completion.text.strip() else "the model returned an empty answer",
    )


async def produce_candidates(
    turn: TurnContext,
    prompt: list[Message],
    persona: Persona | None,
    settings: dict[str, Any],
) -> list[Candidate]:
    """Stage 3 of a turn: every candidate answer, failed ones included (their errors and notes
    are recorded on the turn). Raises :class:`ModelCallError` when no candidate is usable."""

    async def generate(span: SafeSpan) -> list[Candidate]:
        produced = await turn.hooks.collect(
            "generate_candidates",
            **turn.hook_arguments(persona, prompt=prompt, settings=dict(settings)),
        )
        span.set(semconv.PP_CANDIDATE_COUNT, len(produced))
        return produced

    candidates = await turn.stage("generate_candidates", generate) or []
    if not candidates:
        # No plugin produced a candidate (or the stage failed): answer the prompt directly.
        candidates = [
            await complete_candidate("direct", turn.model, prompt, dict(settings), persona=persona)
        ]
    for candidate in candidates:
        if not candidate.notes and not candidate.error:
            continue
        problems = [(note, "CandidateNote") for note in candidate.notes]
        if candidate.error:
            problems.append((candidate.error, "CandidateError"))
        turn.errors.extend(
            StageError(
                stage="generate_candidates",
                error=f"candidate {candidate.name!r}: {problem}",
                error_type=kind,
            )
            for problem, kind in problems
        )
    if not any(c.ok for c in candidates):
        cause = next((c.exception for c in candidates if c.exception is not None), None)
        raise ModelCallError(
            "every candidate failed: "
            + "; ".join(f"{c.name}: {c.error}" for c in candidates)
            + ". The conversation is kept on this error's `messages`.",
            messages=turn.messages,
            errors=[c.error for c in candidates],
        ) from cause
    return candidates


@hookimpl
def generate_candidates(
    messages: Sequence[Message],
    prompt: Sequence[Message],
    persona: Persona | None,
    config: PipelineConfig,
    model: TurnModel,
    settings: dict[str, Any],
) -> list[Awaitable[Candidate]]:
    wanted: list[Awaitable[Candidate]] = []
    if persona is not None and config.persona_mode != "multi":
        wanted.append(complete_candidate("persona", model, prompt, settings, persona=persona))
    # Without a persona the neutral answer is the answer, except in "multi" mode, where the SPP
    # candidate (persona_plugins.collaboration) answers instead.
    solo_neutral = persona is None and config.persona_mode != "multi"
    if solo_neutral or config.ensemble == "jekyll_hyde":
        wanted.append(complete_candidate("neutral", model, messages, settings))
    return wanted


def only_builtin_candidates(pm: pluggy.PluginManager) -> bool:
    """True when only the built-in ``generate_candidates`` implementations are registered (the
    persona and neutral answers here, and the SPP candidate, which adds nothing outside
    ``persona_mode="multi"``): then a turn's candidate is the model's own reply to the prompt."""
    from persona_plugins import collaboration  # it imports this module

    builtins = (generate_candidates, collaboration.generate_candidates)
    return all(
        impl.function in builtins or impl.wrapper or impl.hookwrapper
        for impl in pm.hook.generate_candidates.get_hookimpls()
    )
