"""Stage 1, choose the persona: the built-in ``select_persona`` implementations.

- ``persona_mode="static"``: the configured persona (or none);
- ``persona_mode="none"``: no persona;
- ``persona_mode="generated"``: the model writes a persona suited to the question (the setting
  that worked best in "Persona is a Double-edged Sword"); unusable output falls back to the
  configured persona, or to none, and the choice's ``note`` says why.

Several collaborating personas (``persona_mode="multi"``) are produced inside one candidate by
:mod:`persona_plugins.collaboration`, so no single persona is selected for that mode.

:func:`choose_persona` runs the stage: the ``select_persona`` hook, then, when no plugin chose (or
the one that tried raised), the configured persona.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.hookspecs import hookimpl
from persona_plugins.messages import last_user_text
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona
from persona_plugins.results import PersonaChoice
from persona_plugins.turn_model import TurnModel

if TYPE_CHECKING:
    from persona_plugins.hookcalls import Hooks
    from persona_plugins.stages import Once, TurnContext
    from persona_plugins.tracing import SafeSpan

__all__ = [
    "PERSONA_GENERATION_PROMPT",
    "PERSONA_GENERATION_REQUEST",
    "choose_persona",
    "configured_persona",
    "parse_generated_persona",
    "static_choice",
]

#: Instructions for writing a persona from the question. The question itself is not answered.
PERSONA_GENERATION_PROMPT = (
    "You write role descriptions. You will be shown a question. Do not answer it. Describe, in "
    "one short phrase, the person best placed to answer it well: their profession and what they "
    "are expert in. Reply with the phrase only, starting with 'a' or 'an'. Example: an "
    "experienced structural engineer who designs steel bridges"
)
#: The user turn of the persona call; ``{question}`` is the user's last message.
PERSONA_GENERATION_REQUEST = (
    "Question:\n{question}\n\nWho is best placed to answer this question? Reply with one "
    "phrase starting with 'a' or 'an'."
)

_MIN_WORDS, _MAX_WORDS = 1, 40
_UNUSABLE = re.compile(
    r"\b(sorry|cannot|can't|unable|as an ai|language model|i am not|i'm not|the answer|answer is"
    r"|this question)"
    r"\b|^(yes|no)\b",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^\s*(?:a|answer|role|persona|description)\s*:\s*", re.IGNORECASE)
_ARTICLE_PHRASE = re.compile(r"(?:\bis|\bbe|:)\s+(an?\s+[A-Za-z][^.;]*)", re.IGNORECASE)
_ANSWER_LIKE = re.compile(r"[$=]|\d+\s*(?:cents|dollars)|\b(?:left|spent|total)\b", re.I)
_LEAD_IN = re.compile(
    r"^(?:sure[,!.]?\s*)?(?:here is|here's)?\s*(?:the\s+)?(?:persona|role|description)?\s*[:\-]?\s*"
    r"(?:you are\s+)?",
    re.IGNORECASE,
)


def parse_generated_persona(text: str) -> tuple[str | None, str | None]:
    """Turn the model's reply into a persona description, or explain why it is unusable.

    Returns ``(description, None)`` or ``(None, reason)``. Small models wrap the phrase in
    chatter ("The best person is a ..."), so the phrase starting at the last article is taken.

    >>> parse_generated_persona('You are "a veteran air-traffic controller".')
    ('a veteran air-traffic controller', None)
    >>> parse_generated_persona("A: The best person to ask is a marine biologist.")
    ('a marine biologist', None)
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None, "the model returned nothing"
    quotes = "\"'*`"
    line = _LABEL.sub("", lines[0])
    phrase = _LEAD_IN.sub("", line).strip().strip(quotes).rstrip(".").strip().strip(quotes)
    inner = _ARTICLE_PHRASE.search(phrase)
    if inner:  # "The best person to ask is a marine biologist" -> "a marine biologist"
        phrase = inner.group(1).strip().rstrip(".").strip(quotes)
    if _UNUSABLE.search(phrase):
        return None, f"the model declined or answered off-task: {phrase[:80]!r}"
    words = phrase.split()
    content = words[1:] if words and words[0].lower() in {"a", "an", "the"} else words
    if not _MIN_WORDS <= len(content) <= _MAX_WORDS:
        return None, f"expected a phrase of {_MIN_WORDS}-{_MAX_WORDS} words, got {len(content)}"
    if "?" in phrase or _ANSWER_LIKE.search(phrase):
        return None, f"the reply answers the question instead of naming a role: {phrase[:80]!r}"
    if words[0].lower() not in {"a", "an", "the"}:
        article = "an" if phrase[0].lower() in "aeiou" else "a"
        phrase = f"{article} {phrase[0].lower()}{phrase[1:]}"
    return phrase, None


def configured_persona(config: PipelineConfig) -> Persona | None:
    """The persona the configuration names; None when there is none or ``persona_mode="none"``."""
    if config.persona_mode == "none" or not isinstance(config.persona, Persona):
        return None
    return config.persona


def static_choice(hooks: Hooks, once: Once, config: PipelineConfig) -> PersonaChoice | None:
    """The choice of the built-in ``select_persona`` when it is the hook's one implementation and
    the mode is not ``generated``: then it depends on the configuration only, so it is made once
    (and again when the persona or the mode changes). None when the hook must be called."""
    if config.persona_mode == "generated" or not hooks.is_only("select_persona", select_persona):
        return None
    return once.get(
        "select_persona",
        (config.persona, config.persona_mode),
        lambda: _configured_choice(config),
    )


async def choose_persona(turn: TurnContext, personas: dict[str, Persona]) -> PersonaChoice:
    """Stage 1 of a turn: the persona a ``select_persona`` plugin chooses, else the configured
    one."""

    async def select(span: SafeSpan) -> PersonaChoice | None:
        choice = static_choice(turn.hooks, turn.once, turn.config)
        if choice is None:
            choice = await turn.hooks.decide(
                "select_persona",
                messages=turn.messages,
                config=turn.config,
                model=turn.model,
                personas=personas,
            )
        if choice is not None and span.recording:
            span.set_many(
                {
                    semconv.PP_PERSONA_NAME: choice.persona.name if choice.persona else None,
                    semconv.PP_PERSONA_SOURCE: choice.source,
                }
            )
        return choice

    choice = await turn.stage("select_persona", select)
    if choice is not None:
        return choice
    configured = configured_persona(turn.config)
    if configured is None:
        return PersonaChoice(persona=None, source="none")
    return PersonaChoice(
        persona=configured,
        source="config",
        note="no plugin chose a persona; using the configured one",
    )


async def _generate(
    messages: Sequence[Message], config: PipelineConfig, model: ChatModel
) -> PersonaChoice:
    fallback = config.persona if isinstance(config.persona, Persona) else None
    writer = TurnModel.wrap(model).as_agent("persona_writer")
    request = PERSONA_GENERATION_REQUEST.format(question=last_user_text(messages, or_last=True))
    prompt = [Message.system(PERSONA_GENERATION_PROMPT), Message.user(request)]
    try:
        completion = await writer.complete(prompt, max_tokens=60)
        description, reason = parse_generated_persona(completion.text)
    except Exception as exc:
        description, reason = None, f"the persona call failed: {type(exc).__name__}: {exc}"
    if description is None:
        where = f"the configured persona {fallback.name!r}" if fallback else "no persona"
        return PersonaChoice(
            persona=fallback,
            source="fallback",
            note=f"generated persona unusable ({reason}); using {where}",
        )
    persona = Persona(name="generated", description=description, metadata={"generated": True})
    return PersonaChoice(persona=persona, source="generated")


@hookimpl(trylast=True)
def select_persona(
    messages: Sequence[Message], config: PipelineConfig, model: TurnModel
) -> PersonaChoice | Awaitable[PersonaChoice] | None:
    if config.persona_mode == "generated":
        return _generate(messages, config, model)
    return _configured_choice(config)


def _configured_choice(config: PipelineConfig) -> PersonaChoice:
    """The built-in choice in every mode but ``generated``: the configuration's alone."""
    if config.persona_mode == "none":
        return PersonaChoice(persona=None, source="none")
    if config.persona_mode == "multi":
        return PersonaChoice(
            persona=None,
            source="multi",
            note="several personas collaborate inside the SPP candidate",
        )
    persona = config.persona if isinstance(config.persona, Persona) else None
    note = None if persona is not None else "no persona configured; answering neutrally"
    return PersonaChoice(persona=persona, source="config", note=note)
