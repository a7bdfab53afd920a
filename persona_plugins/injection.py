"""Stage 2, write the persona into the prompt: system prompt templates and their placement.

The persona always goes into a *system* message at the head of the conversation, never into a user
message (providers' jailbreak filters react to persona text in user turns, and a user turn would
change what the model thinks the user said). When the model accepts a single system message only,
the persona is merged into the existing leading one.

:func:`write_persona` runs the stage: ``persona_system_prompt`` writes the text, ``inject_persona``
places it. While the built-in ``persona_system_prompt`` is the only implementation, a persona's text
is rendered once per pipeline (a persona is immutable), not on every turn.

:func:`prepare_prompt` runs stages 1 and 2 on their own (for adapters passing a call to their
framework's client); :func:`static_prepared` gives the same result without the stage machinery
while only the built-in hooks could take part and nothing records the stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona
from persona_plugins.results import PersonaChoice, PreparedPrompt
from persona_plugins.selection import choose_persona, static_choice
from persona_plugins.tracing import genai_instructions
from persona_plugins.turn_model import TurnModel

if TYPE_CHECKING:
    from persona_plugins.hookcalls import Hooks
    from persona_plugins.stages import Once, TurnContext
    from persona_plugins.tracing import SafeSpan

T = TypeVar("T")

__all__ = [
    "PERSONA_TEMPLATES",
    "StaticHead",
    "prepare_prompt",
    "render_persona",
    "static_head",
    "static_placement",
    "static_prepared",
    "static_text",
    "write_persona",
]

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


async def prepare_prompt(turn: TurnContext, personas: dict[str, Persona]) -> PreparedPrompt:
    """Stages 1 and 2 on their own (what :meth:`~persona_plugins.PersonaPipeline.prepare` runs):
    choose the persona and write it into the prompt."""
    choice = await choose_persona(turn, personas)
    system_prompt, prompt = await write_persona(turn, choice.persona)
    return _prepared(choice, system_prompt, prompt)


def static_prepared(
    hooks: Hooks, once: Once, config: PipelineConfig, messages: list[Message], model: ChatModel
) -> PreparedPrompt | None:
    """What :func:`prepare_prompt` gives, made without its stage machinery, when nothing but the
    built-ins can take part (see :func:`static_head`). The caller makes sure nothing would record
    the stages (no span, no measurement). None when a hook must be called, or when a built-in
    raised: then the stages run as usual and record the failure as they do.
    """
    head = static_head(hooks, once, config)
    if head is None:
        return None
    try:
        prompt = messages
        if head.system is not None:
            prompt = _placed(messages, head.text or "", config, model, head.system)
    except Exception:
        return None
    return _prepared(head.choice, head.text, prompt)


class StaticHead(NamedTuple):
    """The persona's part of a prepared prompt as the built-ins make it (:func:`static_head`)."""

    choice: PersonaChoice
    text: str | None  #: the system prompt; None when nothing is written
    system: Message | None  #: its system message (the same object while the text is the same)

    def prepared(self, messages: list[Message]) -> PreparedPrompt:
        """The prepared prompt for ``messages`` with the system message at their head (to be used
        only when the built-in placement would put it there, see :func:`static_head`)."""
        return _prepared(self.choice, self.text, self.placed(messages, lambda system: system))

    def placed(self, messages: Sequence[T], made: Callable[[Message], T]) -> list[T]:
        """A framework's own ``messages`` as sent with this head: the system message, in the
        framework's form (``made``), before them, as :meth:`prepared` places it."""
        return [made(self.system), *messages] if self.system is not None else list(messages)


def static_head(
    hooks: Hooks,
    once: Once,
    config: PipelineConfig,
    model: ChatModel | None = None,
    *,
    first_role: str | None = None,
) -> StaticHead | None:
    """The persona's choice, system prompt and system message when nothing but the built-ins can
    take part: ``select_persona`` (not ``generated``), ``persona_system_prompt`` and
    ``inject_persona`` each have the built-in as their one implementation, called directly (no
    ``wrapper=True`` implementation, no hook-call monitoring).

    With ``first_role`` (the role of the conversation's first message, and ``model`` given),
    None as well when the built-in placement would merge the persona into that leading system
    message rather than put its own message first. None when a built-in raised.
    """
    impls = hooks.implementation_lists(_PERSONA_HOOKS)
    if impls is None or config.persona_mode == "generated":
        return None
    # what the built-ins make depends on these alone: made once, and again when one changes
    key = (impls, config.persona, config.persona_mode, config.persona_template)
    try:
        head = once.get("static_head", key, lambda: _static_head(hooks, once, config))
    except Exception:  # a built-in raised (nothing kept): the stages run and record it
        return None
    if head is None or head.system is None or first_role != "system" or model is None:
        return head
    try:
        merges = _merges(config, model)
    except Exception:  # the model could not say: the stages decide
        return None
    return None if merges else head


_PERSONA_HOOKS = ("select_persona", "persona_system_prompt", "inject_persona")


def _static_head(hooks: Hooks, once: Once, config: PipelineConfig) -> StaticHead | None:
    choice = static_choice(hooks, once, config)
    if choice is None:
        return None
    if choice.persona is None:
        return StaticHead(choice, None, None)
    text = static_text(hooks, once, choice.persona, config.persona_template)
    if text is None:
        return None
    if not text:  # as the stage: an empty text is no text
        return StaticHead(choice, None, None)
    if not hooks.is_only("inject_persona", inject_persona):
        return None
    # the very message the inject stage places for this text, so a framework message made from it
    # (and remembered by it) serves both paths
    return StaticHead(choice, text, once.get("system_message", text, lambda: Message.system(text)))


def _prepared(
    choice: PersonaChoice, system_prompt: str | None, prompt: list[Message]
) -> PreparedPrompt:
    return PreparedPrompt(  # quicker than model_construct; Message objects pass as they are
        persona=choice.persona,
        persona_source=choice.source,
        persona_note=choice.note,
        system_prompt=system_prompt,
        prompt=prompt,
    )


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
        prompt = static_placement(
            turn.hooks, turn.once, turn.messages, text, turn.config, turn.model
        )
        if prompt is None:
            injected = await turn.hooks.decide(
                "inject_persona",
                messages=turn.messages,
                system_prompt=text,
                config=turn.config,
                model=turn.model,
            )
            prompt = list(injected) if injected is not None else turn.messages
        return text, prompt

    written = await turn.stage("inject_persona", inject)
    return written if written is not None else (None, turn.messages)


async def _system_prompt(turn: TurnContext, persona: Persona) -> str | None:
    text = static_text(turn.hooks, turn.once, persona, turn.config.persona_template)
    if text is None:
        text = await turn.hooks.decide("persona_system_prompt", persona=persona, config=turn.config)
    return text


def static_text(hooks: Hooks, once: Once, persona: Persona, template: str) -> str | None:
    """The built-in ``persona_system_prompt``'s text when it is the hook's one implementation:
    it depends on the persona and the template only, so it is rendered once (and again when
    either changes). None when the hook must be called."""
    if not hooks.is_only("persona_system_prompt", persona_system_prompt):
        return None
    return once.get(
        "persona_system_prompt", (persona, template), lambda: render_persona(persona, template)
    )


def static_placement(
    hooks: Hooks,
    once: Once,
    messages: list[Message],
    system_prompt: str,
    config: PipelineConfig,
    model: ChatModel,
) -> list[Message] | None:
    """The built-in ``inject_persona``'s placement when it is the hook's one implementation,
    with its system message (immutable) made once per text. None when the hook must be called."""
    if not hooks.is_only("inject_persona", inject_persona):
        return None
    system = once.get("system_message", system_prompt, lambda: Message.system(system_prompt))
    return _placed(messages, system_prompt, config, model, system)


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
    model: ChatModel,
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


def _merges(config: PipelineConfig, model: ChatModel) -> bool:
    """Whether the persona is merged into a leading system message (the model takes only one)."""
    if config.merge_system_messages is not None:
        return config.merge_system_messages
    return not getattr(model, "supports_multiple_system_messages", True)
