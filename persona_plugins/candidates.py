"""Stage 3, produce candidates: the built-in persona and neutral answers.

With a persona, the persona candidate answers the persona prompt. The neutral candidate answers
the conversation as the caller passed it: it is the only candidate when there is no persona, and
the second one when ``ensemble="jekyll_hyde"``. Other plugins add candidates on the same hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from persona_plugins.config import PipelineConfig
from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona
from persona_plugins.results import Candidate

__all__ = ["complete_candidate"]


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
    agent = getattr(model, "as_agent", None)
    caller = agent(f"{name}_candidate") if callable(agent) else model
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


@hookimpl
def generate_candidates(
    messages: Sequence[Message],
    prompt: Sequence[Message],
    persona: Persona | None,
    config: PipelineConfig,
    model: ChatModel,
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
