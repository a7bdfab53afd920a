"""Stage 2, write the persona into the prompt: system prompt templates and their placement.

The persona always goes into a *system* message at the head of the conversation, never into a user
message (providers' jailbreak filters react to persona text in user turns, and a user turn would
change what the model thinks the user said). When the model accepts a single system message only,
the persona is merged into the existing leading one.

:func:`write_persona` runs the stage: ``persona_system_prompt`` writes the text, ``inject_persona``
places it. While the built-in ``persona_system_prompt`` is the only implementation, a persona's text
is rendered once per pipeline (a persona is immutable), not on every turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import Message
from persona_plugins.persona import Persona
from persona_plugins.tracing import genai_instructions
from persona_plugins.turn_model import TurnModel

if TYPE_CHECKING:
    from persona_plugins.stages import TurnContext
    from persona_plugins.tracing import SafeSpan

__all__ = ["PERSONA_TEMPLATES", "render_persona", "write_persona"]

#: Opening line of each built-in template; ``{description}`` is the persona's description.
PERSONA_TEMPLATES: dict[str, str] = {
    # A plain description of who the assistant is.
    "describe": "You are {description}.",
    # Ask the model to take the identity on as its own for the whole conversation.
    "adopt": (
        "Adopt the identity of {description}. Think, reason and reply as this person would, "
        "in the first person, for the rest of this conversation."
    ),
    # Set up a role-play: the model is an actor who stays in character but keeps facts right.
    "roleplay": (
        "This conversation is a role-play. Your role: {description}. Stay in character in "
        "every reply, with the role's voice and point of view, while keeping every fact, "
        "number and instruction correct."
    ),
}

_MERGE_SEPARATOR = "\n\n"


def render_persona(persona: Persona, template: str = "describe") -> str:
    """Render a persona with one of :data:`PERSONA_TEMPLATES`.

    >>> p = Persona(name="pirate", description="a pirate captain", traits=["bold", "loyal"])
    >>> print(render_persona(p))
    You are a pirate captain.
    Your traits: bold, loyal.
    """
    if template not in PERSONA_TEMPLATES:
        raise ValueError(
            f"unknown persona template {template!r}; use one of {list(PERSONA_TEMPLATES)}"
        )
    description = persona.description.rstrip(".")
    lines = [PERSONA_TEMPLATES[template].format(description=description)]
    if persona.traits:
        lines.append(f"Your traits: {', '.join(persona.traits)}.")
    if persona.style:
        lines.append(f"How you write: {persona.style}")
    if persona.statements:
        lines.append("Facts about you that your replies never contradict:")
        lines.extend(f"- {statement}" for statement in persona.statements)
    return "\n".join(lines)


async def write_persona(
    turn: TurnContext, persona: Persona | None, *, instruction: str | None = None
) -> tuple[str | None, list[Message]]:
    """Stage 2 of a turn: the persona's system prompt and the conversation that carries it.

    :param persona: the persona chosen for the turn (None: nothing to write, unless
        ``instruction``).
    :param instruction: text added after the persona's system prompt (the guard's de-biasing
        instruction when it regenerates an answer).
    :return: ``(system prompt, prompt)``; with nothing to write, ``(None, the messages)``.
    """

    async def inject(span: SafeSpan) -> tuple[str, list[Message]] | None:
        text = await _system_prompt(turn, persona) if persona is not None else None
        if instruction:
            text = f"{text}\n\n{instruction}" if text else instruction
        if not text:
            return None
        shown = text
        span.set_content(semconv.GEN_AI_SYSTEM_INSTRUCTIONS, lambda: genai_instructions(shown))
        if turn.hooks.is_only("inject_persona", inject_persona):
            # the built-in, directly; its system message (immutable) made once per text
            prompt = text
            system = turn.once.get("system_message", prompt, lambda: Message.system(prompt))
            return text, _placed(turn.messages, text, turn.config, turn.model, system)
        injected = await turn.hooks.decide(
            "inject_persona",
            messages=turn.messages,
            system_prompt=text,
            config=turn.config,
            model=turn.model,
        )
        return text, list(injected) if injected is not None else turn.messages

    written = await turn.stage("inject_persona", inject)
    return written if written is not None else (None, turn.messages)


async def _system_prompt(turn: TurnContext, persona: Persona) -> str | None:
    template = turn.config.persona_template
    if turn.hooks.is_only("persona_system_prompt", persona_system_prompt):
        # the built-in's text depends on the persona and the template only: render it once
        return turn.once.get(
            "persona_system_prompt", (persona, template), lambda: render_persona(persona, template)
        )
    text: str | None = await turn.hooks.decide(
        "persona_system_prompt", persona=persona, config=turn.config
    )
    return text


@hookimpl(trylast=True)
def persona_system_prompt(persona: Persona, config: PipelineConfig) -> str:
    return render_persona(persona, config.persona_template)


@hookimpl(trylast=True)
def inject_persona(
    messages: Sequence[Message], system_prompt: str, config: PipelineConfig, model: TurnModel
) -> list[Message]:
    return _placed(messages, system_prompt, config, model)


def _placed(
    messages: Sequence[Message],
    system_prompt: str,
    config: PipelineConfig,
    model: TurnModel,
    system: Message | None = None,
) -> list[Message]:
    """The built-in placement; ``system`` is ``Message.system(system_prompt)`` when already made."""
    if messages and messages[0].role == "system" and _merges(config, model):
        head = messages[0]
        merged = Message(
            role="system", content=system_prompt + _MERGE_SEPARATOR + head.content, name=head.name
        )
        return [merged, *messages[1:]]
    return [system or Message.system(system_prompt), *messages]


def _merges(config: PipelineConfig, model: TurnModel) -> bool:
    """Whether the persona is merged into a leading system message (the model takes only one)."""
    if config.merge_system_messages is not None:
        return config.merge_system_messages
    return not getattr(model, "supports_multiple_system_messages", True)
