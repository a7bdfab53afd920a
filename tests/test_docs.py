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


def _opening(section: str) -> str:
    """A README section's text before its first code block."""
    body = README.split(f"\n## {section}\n", 1)[1]
    return body.split("\n## ", 1)[0].split("```", 1)[0]


@pytest.mark.parametrize(
    "section,extra",
    [
        ("AutoGen in ten lines", "autogen,local"),
        ("Semantic Kernel", "semantic-kernel"),
        ("Agent Framework", "agent-framework"),
        ("The pipeline without a framework", "local"),
        ("Tracing and metrics", "otel"),
    ],
)
def test_framework_sections_open_with_the_extra_they_need_and_how_to_install_it_from_a_clone(
    section, extra
):
    opening = _opening(section)
    assert f"`{extra.split(',')[0]}`" in opening, f"{section!r} does not name its extra"
    assert f'pip install -e ".[{extra}' in opening, f"{section!r} lacks the install from a clone"


def test_the_semantic_kernel_section_says_make_demo_does_not_install_it():
    opening = _opening("Semantic Kernel")
    assert "`make demo` does **not** install" in opening
    assert '.venv/bin/pip install -e ".[semantic-kernel]"' in opening


def test_the_openai_compatible_server_path_names_the_server_extra():
    autogen = README.split("\n## AutoGen in ten lines\n", 1)[1].split("\n## ", 1)[0]
    lead = autogen.split("**An OpenAI-compatible server**", 1)[1].split("```python", 1)[0]
    assert "`server` extra" in lead and 'pip install -e ".[server]"' in lead
    assert "tiktoken" in lead and "llama-cpp-python[server]" in lead


def test_the_demo_summary_in_the_readme_is_what_the_demo_prints(capsys):
    from persona_plugins.cli.demo import print_team_summary
    from persona_plugins.personas import builtin_personas

    catalog = {p.name: p for p in builtin_personas()}
    rows = [
        ("pirate_captain", catalog["pirate_captain"].description, 1, 135, 170),
        ("children_tutor", catalog["children_tutor"].description, 1, 276, 160),
    ]
    print_team_summary(rows, "embedded SmolLM2-135M-Instruct (llama.cpp)", 7.4)
    printed = capsys.readouterr().out
    assert f"```\n{printed}```" in README
    assert "sails the..." in printed  # cut between words, with an ellipsis
