"""Every example runs as a user would run it, on the embedded model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stderr[-3000:]}"
    return proc


def test_every_example_script_has_a_test():
    tested = {
        "autogen_assistant.py",
        "autogen_team.py",
        "autogen_refinement_team.py",
        "pipeline_basics.py",
        "custom_plugin.py",
        "openai_compatible_server.py",
        "sk_kernel_plugin.py",
        "sk_agent.py",
        "sk_orchestration.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.model
def test_autogen_assistant_example():
    out = run_example("examples/autogen_assistant.py").stdout
    assert "persona: pirate_captain, model calls: 1" in out


@pytest.mark.model
def test_autogen_team_example():
    out = run_example("examples/autogen_team.py").stdout
    assert "[historian]" in out and "[children_tutor]" in out


@pytest.mark.model
def test_autogen_refinement_team_example():
    out = run_example("examples/autogen_refinement_team.py").stdout
    assert "[user] Why did people build castles?" in out
    assert "[refined_historian]" in out


@pytest.mark.model
def test_pipeline_basics_example_reads_the_persona_file():
    out = run_example("examples/pipeline_basics.py").stdout
    assert "persona: lighthouse_keeper (config)" in out
    assert "system prompt: Adopt the identity of an old lighthouse keeper" in out
    assert "model calls: 1" in out


@pytest.mark.model
def test_custom_plugin_example_registers_a_persona_and_observes_the_turn():
    out = run_example("examples/custom_plugin.py").stdout
    assert "[audit] persona=beekeeper calls=1" in out


@pytest.mark.server
def test_openai_compatible_server_example(llama_server):
    out = run_example("examples/openai_compatible_server.py", llama_server, "smollm2").stdout
    assert "model calls:" in out


def test_example_persona_file_and_config_are_valid():
    from persona_plugins import Persona, PipelineConfig

    assert Persona.from_file(EXAMPLES / "personas" / "lighthouse_keeper.yaml").name == (
        "lighthouse_keeper"
    )
    assert PipelineConfig.from_toml(EXAMPLES / "pipeline.toml").persona == "historian"


@pytest.mark.model
def test_sk_kernel_plugin_example_injects_the_persona_and_answers():
    out = run_example("examples/sk_kernel_plugin.py").stdout
    assert "the model was sent: ['system', 'user']" in out
    assert "persona: pirate_captain, model calls: 1" in out
    assert 'bias check: {"clean": ' in out


@pytest.mark.model
def test_sk_agent_example_answers_then_streams_as_the_persona():
    out = run_example("examples/sk_agent.py").stdout
    assert out.count("[captain] ") == 2
    assert "persona: pirate_captain, model calls: 2" in out


@pytest.mark.model
def test_sk_orchestration_example_runs_both_persona_agents_in_turn():
    out = run_example("examples/sk_orchestration.py").stdout
    assert out.index("[historian] ") < out.index("[children_tutor] ")
    assert "historian: 1 model call(s)" in out and "children_tutor: 1 model call(s)" in out
