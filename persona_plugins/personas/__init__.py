"""The built-in persona catalog, registered as an ordinary plugin through ``register_personas``.

``experts_and_styles.yaml`` holds subject experts and speaking styles; ``audit.yaml`` holds the
socio-demographic personas and baselines used by bias audits. Both are lists of persona mappings.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pluggy

from persona_plugins.errors import ConfigError
from persona_plugins.hookcalls import register_all
from persona_plugins.hookspecs import hookimpl
from persona_plugins.persona import Persona
from persona_plugins.results import RegisterPersona

__all__ = ["CATALOG_FILES", "builtin_personas", "collect_personas"]

CATALOG_FILES = ("experts_and_styles.yaml", "audit.yaml")


@cache
def builtin_personas() -> tuple[Persona, ...]:
    """Every persona shipped with the package, read once."""
    import yaml  # imported on first use, not at `import persona_plugins`

    personas: list[Persona] = []
    for filename in CATALOG_FILES:
        text = resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
        for index, entry in enumerate(yaml.safe_load(text)):
            personas.append(Persona.from_mapping(entry, source=f"{filename}[{index}]"))
    return tuple(personas)


def collect_personas(pm: pluggy.PluginManager) -> dict[str, Persona]:
    """The persona catalog: every persona registered through ``register_personas``, by name."""
    catalog: dict[str, Persona] = {}

    def register(persona: Persona) -> None:
        if not isinstance(persona, Persona):
            raise ConfigError(
                f"register_personas: register() takes a Persona, got {type(persona).__name__}"
            )
        catalog[persona.name] = persona

    register_all(pm, "register_personas", register)
    return catalog


@hookimpl(tryfirst=True)
def register_personas(register: RegisterPersona) -> None:
    # tryfirst: the catalog registers before any plugin, so a plugin's persona of the same name
    # replaces the built-in one.
    for persona in builtin_personas():
        register(persona)
