"""Every example runs as a user would run it, on the embedded model."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYPROJECT = EXAMPLES.parent / "pyproject.toml"
# "[source] content" up to the next speaker, or a summary line such as "historian: 1 model call(s)"
_SAID = re.compile(
    r"^\[(?P<source>[A-Za-z_]\w*)\]\ (?P<text>.*?)(?=^\[[A-Za-z_]\w*\]\ |^[a-z_]+:\ |\Z)",
    re.M | re.S | re.X,
)


def said(out: str) -> dict[str, list[str]]:
    """What each speaker said in an example's ``[source] content`` transcript."""
    words: dict[str, list[str]] = {}
    for match in _SAID.finditer(out):
        words.setdefault(match["source"], []).append(match["text"].strip())
    return words


def assert_each_agent_spoke(out: str, *agents: str) -> None:
    """Each agent said something of its own: a few words, not an empty or stock reply."""
    transcript = said(out)
    for agent in agents:
        assert agent in transcript, f"nothing from {agent} in:\n{out}"
        for text in transcript[agent]:
            assert len(text.split()) >= 5, f"{agent} said only {text!r}"
            assert text.rstrip(":") != "The answer to this question is", out


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
    # The scripts the example tests run, read from the tests themselves: an example whose test is
    # removed (or never written) fails here.
    run = set()
    for test_file in Path(__file__).parent.glob("test_*.py"):
        run |= set(re.findall(r'run_example\(\s*"examples/([\w.]+\.py)"', test_file.read_text()))
    assert {p.name for p in EXAMPLES.glob("*.py")} == run


@pytest.mark.model
def test_autogen_assistant_example():
    out = run_example("examples/autogen_assistant.py").stdout
    assert "persona: pirate_captain, model calls: 1" in out


@pytest.mark.model
def test_autogen_team_example_prints_what_each_agent_said():
    out = run_example("examples/autogen_team.py").stdout
    assert "[user] Why did people build castles?" in out
    assert out.index("[historian] ") < out.index("[children_tutor] ")
    assert_each_agent_spoke(out, "historian", "children_tutor")
    assert "historian: 1 model call(s)" in out and "children_tutor: 1 model call(s)" in out


@pytest.mark.model
def test_autogen_refinement_team_example_prints_the_writer_each_reviewer_and_the_reply():
    out = run_example("examples/autogen_refinement_team.py").stdout
    assert "[user] Why did people build castles?" in out
    order = ["writer", "factuality_reviewer", "coherence_reviewer", "refined_historian"]
    positions = [out.index(f"[{name}] ") for name in order]
    assert positions == sorted(positions)
    assert_each_agent_spoke(out, *order)


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


@pytest.mark.model
def test_distributed_autogen_team_example_runs_members_on_two_grpc_workers():
    out = run_example("examples/distributed_autogen_team.py").stdout
    assert "[user] Why did people build castles?" in out
    assert out.index("[historian] ") < out.index("[children_tutor] ")
    assert "historian: 2 model call(s)" in out and "children_tutor: 2 model call(s)" in out
    # the team checks ran in the members' clients: the fourth reply got the length note
    assert "children_tutor: 2 model call(s), team findings: discussion_length" in out


@pytest.mark.server
def test_openai_compatible_server_example(llama_server):
    out = run_example("examples/openai_compatible_server.py", llama_server, "smollm2").stdout
    assert "model calls:" in out


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def _extra_requirements(extra: str) -> list[Requirement]:
    """The requirements an extra of this project brings, its own extras expanded."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    found: list[Requirement] = []
    for line in project["optional-dependencies"][extra]:
        requirement = Requirement(line)
        if _name(requirement.name) == _name(project["name"]):
            for inner in sorted(requirement.extras):
                found.extend(_extra_requirements(inner))
        else:
            found.append(requirement)
    return found


def test_the_server_extra_brings_everything_the_server_example_needs():
    script = EXAMPLES / "openai_compatible_server.py"
    requirements = {_name(r.name): r for r in _extra_requirements("server")}
    # every distribution the script imports from ...
    tree = ast.parse(script.read_text(encoding="utf-8"))
    modules = {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    distributions = packages_distributions()
    for module in modules - set(sys.stdlib_module_names) - {"persona_plugins"}:
        assert any(_name(d) in requirements for d in distributions[module]), module
    # ... AutoGen's OpenAI client (which imports openai and tiktoken), and llama.cpp's server
    assert "openai" in requirements["autogen-ext"].extras
    assert "tiktoken" in requirements
    assert "server" in requirements["llama-cpp-python"].extras
    # and the extra is in "all" and "dev", and the script says how to install it
    assert any(_name(r.name) == "tiktoken" for r in _extra_requirements("all"))
    assert any(_name(r.name) == "tiktoken" for r in _extra_requirements("dev"))
    doc = ast.get_docstring(tree) or ""
    assert 'pip install -e ".[server]"' in doc and "tiktoken" in doc


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
    assert_each_agent_spoke(out, "historian", "children_tutor")
    assert "historian: 1 model call(s)" in out and "children_tutor: 1 model call(s)" in out
