"""The plugin manager: built-ins, entry-point plugins, misspelt hooks, listing what is loaded."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from persona_plugins import (
    DEFAULT_PLUGINS,
    Candidate,
    PersonaChoice,
    PersonaPipeline,
    PluginError,
    get_plugin_manager,
    hookimpl,
    new_plugin_manager,
)
from persona_plugins.plugins import (
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    check_plugins,
    describe_plugins,
)
from tests.core.doubles import ScriptedModel, registered

# -- built-ins -----------------------------------------------------------------------------------


def test_a_new_manager_registers_every_default_plugin_under_its_module_name(plugin_manager):
    names = [name for name, _ in plugin_manager.list_name_plugin()]
    assert names[: len(DEFAULT_PLUGINS)] == list(DEFAULT_PLUGINS)
    for name in DEFAULT_PLUGINS:
        assert plugin_manager.get_plugin(name) is sys.modules[name]


def test_the_default_plugins_include_the_catalog_selection_injection_and_candidates():
    for name in (
        "persona_plugins.personas",
        "persona_plugins.selection",
        "persona_plugins.injection",
        "persona_plugins.candidates",
    ):
        assert name in DEFAULT_PLUGINS


def test_the_built_in_plugins_pass_the_pending_hook_check(plugin_manager):
    check_plugins(plugin_manager)


def test_each_new_manager_is_independent():
    first = new_plugin_manager(load_entrypoints=False)
    second = new_plugin_manager(load_entrypoints=False)

    class Extra:
        @hookimpl
        def on_turn_complete(self, result):
            return None

    first.register(Extra())
    assert len(first.get_plugins()) == len(second.get_plugins()) + 1


def test_the_shared_manager_is_created_once():
    assert get_plugin_manager() is get_plugin_manager()


# -- misspelt hooks ------------------------------------------------------------------------------


def test_a_misspelt_hook_name_fails_loudly_naming_the_hook(plugin_manager):
    class Typo:
        @hookimpl
        def selct_persona(self, config):
            return None

    with registered(plugin_manager, Typo()), pytest.raises(PluginError) as info:
        check_plugins(plugin_manager)
    assert "selct_persona" in str(info.value)
    assert isinstance(info.value.__cause__, pluggy.PluginValidationError)


def test_an_implementation_asking_for_an_argument_the_hook_does_not_have_is_refused(
    plugin_manager,
):
    class WrongArgument:
        @hookimpl
        def select_persona(self, config, question):
            return None

    with pytest.raises(pluggy.PluginValidationError, match="question"):
        plugin_manager.register(WrongArgument())


# -- implementations may take fewer arguments ----------------------------------------------------


async def test_implementations_may_accept_fewer_arguments_than_the_spec(bare_manager, teacher):
    seen: list[str] = []

    class Minimal:
        @hookimpl
        def select_persona(self):
            seen.append("select_persona")
            return PersonaChoice(persona=teacher, source="minimal")

        @hookimpl
        def generate_candidates(self, prompt):
            seen.append("generate_candidates")
            return Candidate(name="canned", text=f"{len(prompt)} messages")

        @hookimpl
        def on_turn_complete(self):
            seen.append("on_turn_complete")

    model = ScriptedModel()
    with registered(bare_manager, Minimal()):
        result = await PersonaPipeline(model, plugin_manager=bare_manager).run("hi")
    assert seen == ["select_persona", "generate_candidates", "on_turn_complete"]
    assert result.persona == teacher
    assert result.persona_source == "minimal"
    assert "canned" in [c.name for c in result.candidates]
    assert result.errors == []


# -- entry points --------------------------------------------------------------------------------


def make_distribution(
    root: Path, module: str, body: str, *, project: str = "pp-test-plugin"
) -> None:
    """Install a distribution on ``root`` (a directory on sys.path) that declares ``module`` in the
    ``persona_plugins`` entry-point group, exactly as ``pip install`` would lay it out."""
    (root / f"{module}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = root / f"{project.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{module} = {module}\n", encoding="utf-8"
    )


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A third-party plugin installed through a real distribution with an entry point."""
    module = f"pp_entry_plugin_{tmp_path.name.replace('-', '_')}"
    make_distribution(
        tmp_path,
        module,
        """
        from persona_plugins import hookimpl

        @hookimpl
        def on_turn_complete(result):
            return None
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module
    sys.modules.pop(module, None)


def test_entry_point_plugins_are_loaded_by_default(installed_plugin, monkeypatch):
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    pm = new_plugin_manager()
    assert pm.has_plugin(installed_plugin)


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_the_disable_autoload_variable_stops_entry_point_loading(
    installed_plugin, monkeypatch, value
):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    pm = new_plugin_manager()
    assert not pm.has_plugin(installed_plugin)
    assert [name for name, _ in pm.list_name_plugin()] == list(DEFAULT_PLUGINS)


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_falsy_values_of_the_variable_leave_autoload_on(installed_plugin, monkeypatch, value):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    assert new_plugin_manager().has_plugin(installed_plugin)


def test_an_explicit_argument_overrides_the_variable(installed_plugin, monkeypatch):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    assert new_plugin_manager(load_entrypoints=True).has_plugin(installed_plugin)
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    assert not new_plugin_manager(load_entrypoints=False).has_plugin(installed_plugin)


def test_entry_points_are_loaded_from_the_persona_plugins_group(monkeypatch):
    groups: list[str] = []
    monkeypatch.setattr(
        pluggy.PluginManager,
        "load_setuptools_entrypoints",
        lambda self, group, name=None: groups.append(group) or 0,
    )
    new_plugin_manager(load_entrypoints=True)
    assert groups == ["persona_plugins"]


def test_an_entry_point_plugin_with_a_misspelt_hook_fails_loudly(tmp_path, monkeypatch):
    module = "pp_entry_plugin_misspelt"
    make_distribution(
        tmp_path,
        module,
        """
        from persona_plugins import hookimpl

        @hookimpl
        def judge_candidate(candidates):
            return None
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(PluginError, match="judge_candidate"):
            new_plugin_manager(load_entrypoints=True)
    finally:
        sys.modules.pop(module, None)


def test_an_entry_point_plugin_that_fails_to_import_names_the_way_out(tmp_path, monkeypatch):
    module = "pp_entry_plugin_broken"
    make_distribution(tmp_path, module, "raise ImportError('needs a package that is missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(PluginError) as info:
            new_plugin_manager(load_entrypoints=True)
    finally:
        sys.modules.pop(module, None)
    message = str(info.value)
    assert "needs a package that is missing" in message
    assert DISABLE_AUTOLOAD_ENV in message
    assert isinstance(info.value.__cause__, ImportError)


# -- listing plugins -----------------------------------------------------------------------------


def test_describe_plugins_lists_the_built_ins_with_the_hooks_they_implement(plugin_manager):
    rows = {row["name"]: row for row in describe_plugins(plugin_manager)}
    assert rows["persona_plugins.personas"]["hooks"] == ["register_personas"]
    assert rows["persona_plugins.selection"]["hooks"] == ["select_persona"]
    assert rows["persona_plugins.injection"]["hooks"] == ["inject_persona", "persona_system_prompt"]
    assert rows["persona_plugins.candidates"]["hooks"] == ["generate_candidates"]
    for name in DEFAULT_PLUGINS:
        assert rows[name]["source"] == "built-in"
        assert rows[name]["hooks"] == sorted(rows[name]["hooks"])


def test_describe_plugins_lists_a_registered_plugin_and_its_hooks(plugin_manager):
    class Observer:
        @hookimpl
        def on_turn_complete(self, result):
            return None

        @hookimpl
        def configure(self, config):
            return None

    plugin_manager.register(Observer(), name="observer")
    rows = {row["name"]: row for row in describe_plugins(plugin_manager)}
    assert rows["observer"] == {
        "name": "observer",
        "source": "registered",
        "hooks": ["configure", "on_turn_complete"],
    }


def test_describe_plugins_names_the_distribution_of_an_entry_point_plugin(installed_plugin):
    pm = new_plugin_manager(load_entrypoints=True)
    rows = {row["name"]: row for row in describe_plugins(pm)}
    assert rows[installed_plugin]["source"] == "pp-test-plugin 1.2.3"
    assert rows[installed_plugin]["hooks"] == ["on_turn_complete"]


def test_describe_plugins_leaves_out_blocked_plugins(plugin_manager):
    plugin_manager.set_blocked("persona_plugins.candidates")
    names = [row["name"] for row in describe_plugins(plugin_manager)]
    assert "persona_plugins.candidates" not in names
