"""Stage 1, choose the persona: the built-in ``select_persona`` for static personas and ``none``.

Generated personas (``persona_mode="generated"``) and several collaborating personas
(``persona_mode="multi"``) are other plugins on the same hook.
"""

from __future__ import annotations

from persona_plugins.config import PipelineConfig
from persona_plugins.hookspecs import hookimpl
from persona_plugins.persona import Persona
from persona_plugins.results import PersonaChoice


@hookimpl(trylast=True)
def select_persona(config: PipelineConfig) -> PersonaChoice | None:
    if config.persona_mode == "none":
        return PersonaChoice(persona=None, source="none")
    if config.persona_mode != "static":
        return None
    persona = config.persona if isinstance(config.persona, Persona) else None
    note = None if persona is not None else "no persona configured; answering neutrally"
    return PersonaChoice(persona=persona, source="config", note=note)
