"""The plugin manager: built-in plugins, entry-point plugins, and listing what is loaded.

Built-in behaviour is a list of ordinary plugin modules (:data:`DEFAULT_PLUGINS`), registered
exactly like third-party plugins. Third-party plugins are found through the ``persona_plugins``
entry-point group, loaded once, unless ``PERSONA_PLUGINS_DISABLE_AUTOLOAD`` is set.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

import pluggy

from persona_plugins import hookspecs
from persona_plugins.errors import PluginError

__all__ = [
    "DEFAULT_PLUGINS",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "describe_plugins",
    "get_plugin_manager",
    "new_plugin_manager",
]

ENTRY_POINT_GROUP = "persona_plugins"
DISABLE_AUTOLOAD_ENV = "PERSONA_PLUGINS_DISABLE_AUTOLOAD"

#: Built-in plugin modules, registered in this order. Later registrations run first in pluggy, so
#: built-ins registered early are the defaults that any later plugin can override.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "persona_plugins.personas",
    "persona_plugins.selection",
    "persona_plugins.injection",
    "persona_plugins.candidates",
    "persona_plugins.collaboration",
    "persona_plugins.answers",
    "persona_plugins.judging",
    "persona_plugins.refinement",
    "persona_plugins.guardrails.abstention",
    "persona_plugins.guardrails.stereotype",
    "persona_plugins.guardrails.toxicity",
    "persona_plugins.guardrails.contradiction",
    "persona_plugins.guardrails.actions",
)

_shared: pluggy.PluginManager | None = None
_shared_lock = threading.Lock()


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in {"", "0", "false", "no"}


def new_plugin_manager(*, load_entrypoints: bool | None = None) -> pluggy.PluginManager:
    """Create a plugin manager with the hook specs and the built-in plugins registered.

    :param load_entrypoints: load third-party plugins from the ``persona_plugins`` entry-point
        group; by default yes, unless ``PERSONA_PLUGINS_DISABLE_AUTOLOAD`` is set.
    :raises PluginError: when a plugin fails to load or implements a hook that does not exist.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        module = importlib.import_module(name)
        pm.register(module, name=name)
    if load_entrypoints is None:
        load_entrypoints = not _autoload_disabled()
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:
            raise PluginError(
                f"a plugin in the '{ENTRY_POINT_GROUP}' entry-point group failed to load: "
                f"{type(exc).__name__}: {exc}. Uninstall it, or set {DISABLE_AUTOLOAD_ENV}=1 "
                "to skip third-party plugins."
            ) from exc
    check_plugins(pm)
    return pm


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Fail loudly when a plugin implements a hook that has no specification (a misspelt name)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"{exc}. Check the hook name against `persona-plugins plugins` and the README's "
            "hook reference."
        ) from exc


def get_plugin_manager() -> pluggy.PluginManager:
    """The shared plugin manager, created (and entry points loaded) on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = new_plugin_manager()
    return _shared


def describe_plugins(pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """Each registered plugin's name, where it comes from and the hooks it implements."""
    pm = pm or get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        dist = dists.get(id(plugin))
        source = (
            "built-in"
            if name in DEFAULT_PLUGINS
            else (f"{dist.project_name} {dist.version}" if dist is not None else "registered")
        )
        rows.append({"name": name, "source": source, "hooks": hooks})
    return rows
