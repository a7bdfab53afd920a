"""Without AutoGen installed, importing the adapter names the exact ``pip install`` line."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from persona_plugins import MissingExtraError, PersonaPluginsError


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` unimportable and forget every loaded adapter module (restored afterwards)."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    for loaded in [m for m in sys.modules if m.startswith("persona_plugins.adapters.autogen")]:
        monkeypatch.delitem(sys.modules, loaded)


@pytest.mark.parametrize("missing", ["autogen_core", "autogen_core.models"])
def test_importing_the_adapter_without_autogen_names_the_install_line(monkeypatch, missing):
    hide(monkeypatch, missing)

    with pytest.raises(MissingExtraError) as raised:
        importlib.import_module("persona_plugins.adapters.autogen")

    message = str(raised.value)
    assert 'pip install "persona-plugins[autogen]"' in message
    assert "autogen_core" in message
    assert raised.value.extra == "autogen"
    assert isinstance(raised.value, ImportError), "code that catches ImportError keeps working"
    assert isinstance(raised.value, PersonaPluginsError)


def test_the_adapter_imports_again_once_autogen_is_back(monkeypatch):
    with monkeypatch.context() as patch:
        hide(patch, "autogen_core")
        with pytest.raises(MissingExtraError):
            importlib.import_module("persona_plugins.adapters.autogen")

    adapter = importlib.import_module("persona_plugins.adapters.autogen")
    assert adapter.PersonaChatCompletionClient.__name__ == "PersonaChatCompletionClient"


def test_the_core_imports_without_any_framework():
    code = (
        "import sys\n"
        "for name in ('autogen_core', 'autogen_agentchat', 'autogen_ext', 'llama_cpp',"
        " 'semantic_kernel', 'opentelemetry.sdk'):\n"
        "    sys.modules[name] = None\n"
        "import persona_plugins\n"
        "from persona_plugins import PersonaPipeline, Persona\n"
        "try:\n"
        "    import persona_plugins.adapters.autogen\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MissingExtraError")
    assert 'pip install "persona-plugins[autogen]"' in done.stdout
