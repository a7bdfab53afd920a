"""The command line imports no agent framework: every module under ``persona_plugins/`` (the CLI
package included) imports with the frameworks blocked, ``--help`` works without them, and a command
that needs one says which extra installs it. The framework parts live in each adapter's ``_cli``
module, reached through :data:`persona_plugins.cli._common.FRAMEWORKS`.

The import checks run in a fresh interpreter, so modules other tests imported cannot hide a leak.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from persona_plugins.cli import _common
from persona_plugins.cli._common import FRAMEWORKS, FrameworkCli, framework_cli, model_label
from persona_plugins.errors import MissingExtraError

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "persona_plugins"
FRAMEWORK_PACKAGES = (
    "autogen_core",
    "autogen_agentchat",
    "autogen_ext",
    "semantic_kernel",
    "agent_framework",
)
#: An import statement of a framework, anywhere in a file (inside a function too).
FRAMEWORK_IMPORT = re.compile(rf"^\s*(from|import) ({'|'.join(FRAMEWORK_PACKAGES)})", re.MULTILINE)

BLOCKED_PRELUDE = """
import sys
BLOCKED = {blocked!r}
for name in BLOCKED:
    sys.modules[name] = None  # makes the framework look uninstalled
"""

IMPORT_ALL = """
import importlib, json
failed = {{}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = f"{{type(exc).__name__}}: {{exc}}"
leaked = sorted(
    m for m, module in sys.modules.items()
    if m.split(".")[0] in BLOCKED and module is not None
)
print(json.dumps({{"failed": failed, "leaked": leaked}}))
"""

RUN_MAIN = """
from persona_plugins.cli import main
sys.exit(main({argv!r}))
"""


def source_modules() -> list[str]:
    """Every module in the ``persona_plugins/`` folder, by its import name."""
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def run_blocked(code: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(BLOCKED_PRELUDE).format(blocked=blocked) + textwrap.dedent(code)
    env = {**os.environ, "PERSONA_PLUGINS_DISABLE_AUTOLOAD": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# -- nothing under persona_plugins/ imports a framework ----------------------------------------


def test_the_cli_package_has_one_module_per_command_group():
    modules = set(source_modules())
    for name in ("demo", "ask", "evaluate", "personas", "plugins", "check", "audit", "data"):
        assert f"persona_plugins.cli.{name}" in modules
    assert "persona_plugins.cli._common" in modules
    assert not (SOURCE / "cli.py").exists()


def test_no_source_file_has_a_framework_import_statement():
    offenders = {
        str(path.relative_to(REPO)): match.group(0).strip()
        for path in SOURCE.rglob("*.py")
        for match in FRAMEWORK_IMPORT.finditer(path.read_text(encoding="utf-8"))
    }
    assert offenders == {}


def test_every_module_imports_with_every_framework_blocked():
    modules = source_modules()
    done = run_blocked(IMPORT_ALL.format(modules=modules), FRAMEWORK_PACKAGES)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["failed"] == {}
    assert outcome["leaked"] == []
    assert "persona_plugins.cli.demo" in modules and "persona_plugins.cli" in modules


def test_help_works_with_every_framework_blocked():
    done = run_blocked(RUN_MAIN.format(argv=["--help"]), FRAMEWORK_PACKAGES)
    assert done.returncode == 0, done.stderr[-3000:]
    for command in ("demo", "ask", "eval", "personas", "plugins", "check", "audit", "data"):
        assert f"    {command} " in done.stdout


@pytest.mark.parametrize(
    ("argv", "blocked", "extra"),
    [
        (["demo"], FRAMEWORK_PACKAGES, "autogen"),
        (["demo"], ("autogen_agentchat",), "autogen"),
        (["demo", "--framework", "semantic-kernel"], ("semantic_kernel",), "semantic-kernel"),
        (["ask", "Hello?", "--framework", "autogen"], ("autogen_core",), "autogen"),
        (
            ["ask", "Hello?", "--framework", "semantic-kernel"],
            FRAMEWORK_PACKAGES,
            "semantic-kernel",
        ),
    ],
)
def test_a_command_without_its_framework_names_the_install_line(argv, blocked, extra):
    done = run_blocked(RUN_MAIN.format(argv=argv), blocked)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"persona-plugins: error: persona-plugins {argv[0]} needs the '{extra}' extra"
    )
    assert f'pip install "persona-plugins[{extra}]"' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, "one line, no traceback"


def test_the_console_script_without_autogen_names_the_install_line():
    """``persona-plugins demo`` through the installed script itself, run in an interpreter where
    the frameworks are blocked."""
    script = Path(sys.executable).with_name("persona-plugins")
    done = run_blocked(
        f"import runpy\nsys.argv = [{str(script)!r}, 'demo']\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n",
        FRAMEWORK_PACKAGES,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "persona-plugins demo needs the 'autogen' extra" in done.stderr
    assert 'pip install "persona-plugins[autogen]"' in done.stderr


# -- the adapters' CLI modules ---------------------------------------------------------------


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_each_adapter_cli_module_provides_what_the_commands_call(framework):
    module = framework_cli(framework, "demo")
    assert module.__name__ == FRAMEWORKS[framework][0]
    assert isinstance(module.DEMO_NOTE, str)
    for name in ("ask", "run_team"):
        expected = inspect.signature(getattr(FrameworkCli, name))
        actual = inspect.signature(getattr(module, name))
        assert inspect.iscoroutinefunction(getattr(module, name)), name
        assert list(actual.parameters) == [p for p in expected.parameters if p != "self"], name
        for parameter in actual.parameters.values():
            assert parameter.kind == expected.parameters[parameter.name].kind, parameter


def test_a_broken_adapter_is_not_reported_as_a_missing_extra(monkeypatch):
    """Only a missing framework becomes the install line; any other import error shows as it is."""
    broken = "persona_plugins.adapters.no_such_adapter._cli"
    monkeypatch.setitem(FRAMEWORKS, "broken", (broken, "autogen", ("autogen_core",)))
    with pytest.raises(ImportError) as raised:
        framework_cli("broken", "demo")
    assert not isinstance(raised.value, MissingExtraError)
    assert raised.value.name.startswith("persona_plugins.adapters.no_such_adapter")


def test_the_adapter_cli_modules_are_reached_through_the_table_only():
    """The command modules name no adapter module: ``FRAMEWORKS`` is the one place."""
    for path in (SOURCE / "cli").glob("*.py"):
        if path.name != "_common.py":
            assert "adapters." not in path.read_text(encoding="utf-8"), path.name
    for module, _, _ in FRAMEWORKS.values():
        assert importlib.util.find_spec(module) is not None, module


# -- the one model label -----------------------------------------------------------------------


def label_args(**options: str | None) -> argparse.Namespace:
    return argparse.Namespace(**{"base_url": None, "model": None, "model_path": None, **options})


def test_the_model_label_names_a_server_model_a_file_or_the_embedded_model():
    server = label_args(base_url="http://127.0.0.1:8000/v1", model="smollm2")
    assert model_label(server) == "smollm2 at http://127.0.0.1:8000/v1"
    assert model_label(server, runtime=True) == "smollm2 at http://127.0.0.1:8000/v1"
    assert model_label(label_args(base_url="http://h/v1")) == "default at http://h/v1"
    assert model_label(label_args(model_path="/m/x.gguf")) == "/m/x.gguf"
    assert model_label(label_args()) == "embedded SmolLM2-135M-Instruct"
    # the demo summary (and the README's copy of it) names the runtime of the embedded model
    assert model_label(label_args(), runtime=True) == "embedded SmolLM2-135M-Instruct (llama.cpp)"
    assert _common.EMBEDDED_MODEL == "embedded SmolLM2-135M-Instruct"
