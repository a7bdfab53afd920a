"""The plugin manager: built-in plugins, entry-point plugins, and listing what is loaded.

Built-in behaviour is a list of ordinary plugin modules (:data:`DEFAULT_PLUGINS`), registered
exactly like third-party plugins. Third-party plugins are found through the ``persona_plugins``
entry-point group, loaded once, unless ``PERSONA_PLUGINS_DISABLE_AUTOLOAD`` is set.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from persona_plugins import hookspecs
from persona_plugins.errors import ConfigError, PluginError
from persona_plugins.hookcalls import each_implementation, plugin_label, run_to_completion

if TYPE_CHECKING:
    from persona_plugins.config import PipelineConfig

__all__ = [
    "DEFAULT_PLUGINS",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "announce_configuration",
    "check_names",
    "check_plugins",
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
    """Fail loudly when a plugin implements a hook that has no specification (a misspelt name).

    Every :class:`~persona_plugins.PersonaPipeline` calls this when it is built, so a plugin
    registered after the manager was created is checked too.

    :raises PluginError: naming the plugin, the hook and the closest hook name.
    """
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        label = plugin_label(pm, exc.plugin)
        unknown = sorted(
            name
            for name, caller in vars(pm.hook).items()
            if not name.startswith("_")
            and not caller.has_spec()
            and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
        )
        known = sorted(
            n for n, c in vars(pm.hook).items() if not n.startswith("_") and c.has_spec()
        )
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise PluginError(
            f"plugin {label!r} implements {', '.join(hints) or 'a hook'}, which is not a "
            "persona-plugins hook. Check the hook name against `persona-plugins plugins` and the "
            "README's hook reference."
        ) from exc


# Configurations announced through ``configure``, per plugin manager: configuration -> the names
# of the plugins that saw it. Bounded, so that building pipelines keeps no memory per pipeline.
_announced: weakref.WeakKeyDictionary[pluggy.PluginManager, OrderedDict[str, set[str]]] = (
    weakref.WeakKeyDictionary()
)
_announced_lock = threading.Lock()
_REMEMBERED_CONFIGS = 64


def announce_configuration(pm: pluggy.PluginManager, config: PipelineConfig) -> None:
    """Call ``configure(config)`` on each plugin that has not seen this configuration yet.

    Once per plugin manager, configuration and plugin: building many pipelines with one
    configuration calls nothing after the first, and a plugin registered later is told on the
    next pipeline built.

    :raises PluginError: when an implementation raises, naming the plugin.
    """
    implementations = each_implementation(pm, "configure")
    if not implementations:
        return
    key = repr(config)
    with _announced_lock:
        configs = _announced.setdefault(pm, OrderedDict())
        seen = configs.setdefault(key, set())
        configs.move_to_end(key)
        while len(configs) > _REMEMBERED_CONFIGS:
            configs.popitem(last=False)
    for impl in implementations:
        if impl.name in seen:
            continue
        try:
            result = impl.call(config=config)
            if inspect.isawaitable(result):
                run_to_completion(result)
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.label!r} failed in configure: {type(exc).__name__}: {exc}"
            ) from exc
        seen.add(impl.name)


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


def check_names(config: PipelineConfig, **registered: Mapping[str, Any]) -> None:
    """Every name a config field gives (``answer_format``, ``refiners``, ``detectors``) must be
    registered: a misspelt detector would otherwise let everything through unchecked. Defaults are
    not checked (they name built-ins a manager may leave out), except ``answer_format``, whose
    ``auto`` is always valid. Raises :class:`ConfigError` naming the name and the known ones."""
    for field, known in registered.items():
        value = getattr(config, field)
        if field == "answer_format":
            names = [] if value == "auto" else [value]
        elif field in config.model_fields_set:
            names = [entry.partition(":")[0] for entry in value]
            if field == "detectors":
                _check_detector_options(value, known)
        else:
            continue
        unknown = [name for name in names if name not in known]
        if unknown:
            choices = ", ".join(
                sorted({*known} | ({"auto"} if field == "answer_format" else set()))
            )
            raise ConfigError(
                f"{field}: {', '.join(repr(n) for n in unknown)} "
                f"{'is' if len(unknown) == 1 else 'are'} not registered; the registered names are "
                f"{choices}. Check the spelling, or install the plugin that provides it."
            )


def _check_detector_options(entries: list[str], detectors: Mapping[str, Any]) -> None:
    """Options after a detector's name (``"stereotype:confirm"``) must be ones that detector
    reads, when it says which (an ``options`` attribute): a misspelt ``:judge`` would silently
    leave the model check off."""
    for entry in entries:
        name, _, rest = entry.partition(":")
        accepted = getattr(detectors.get(name), "options", None)
        if accepted is None:
            continue
        given = [option.strip() for option in rest.split(",") if option.strip()]
        unknown = [option for option in given if option not in accepted]
        if unknown:
            raise ConfigError(
                f"detectors: {entry!r}: {', '.join(repr(o) for o in unknown)} is not an option of "
                f"{name!r}; its options are {', '.join(sorted(accepted)) or 'none'}"
            )
