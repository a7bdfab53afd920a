"""The README documents what users need: the two commands first, every hook with its signature."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from persona_plugins import hookspecs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _hook_callers():
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return [(name, getattr(pm.hook, name)) for name in dir(pm.hook) if not name.startswith("_")]


@pytest.mark.parametrize("name,caller", _hook_callers(), ids=lambda v: getattr(v, "name", v))
def test_every_hook_has_a_readme_heading_with_its_exact_signature(name, caller):
    signature = f"### `{name}({', '.join(caller.spec.argnames)})`"
    assert signature in README, f"README lacks the heading {signature}"


def test_readme_starts_with_the_two_commands():
    first_section = README.split("\n## ", 2)[1]
    assert first_section.startswith("Two commands")
    assert "make demo" in first_section and "make test" in first_section


def test_readme_configuration_reference_lists_every_config_field():
    from persona_plugins import PipelineConfig

    for field in PipelineConfig.model_fields:
        assert f"`{field}" in README, f"configuration reference lacks {field}"
