"""Without Agent Framework installed, importing the adapter names the exact ``pip install`` line."""

from __future__ import annotations

import importlib
import sys

import pytest

from persona_plugins import MissingExtraError, PersonaPluginsError

ADAPTER = "persona_plugins.adapters.agent_framework"


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` unimportable and forget every loaded adapter module (restored afterwards)."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    for loaded in [m for m in sys.modules if m.startswith(ADAPTER)]:
        monkeypatch.delitem(sys.modules, loaded)


@pytest.mark.parametrize("missing", ["agent_framework", "agent_framework.observability"])
def test_importing_the_adapter_without_agent_framework_names_the_install_line(monkeypatch, missing):
    hide(monkeypatch, missing)

    with pytest.raises(MissingExtraError) as raised:
        importlib.import_module(ADAPTER)

    message = str(raised.value)
    assert 'pip install "persona-plugins[agent-framework]"' in message
    assert "agent_framework" in message
    assert raised.value.extra == "agent-framework"
    assert isinstance(raised.value, ImportError), "code that catches ImportError keeps working"
    assert isinstance(raised.value, PersonaPluginsError)


def test_the_adapter_imports_again_once_agent_framework_is_back(monkeypatch):
    with monkeypatch.context() as patch:
        hide(patch, "agent_framework")
        with pytest.raises(MissingExtraError):
            importlib.import_module(ADAPTER)

    adapter = importlib.import_module(ADAPTER)
    assert adapter.PersonaMiddleware.__name__ == "PersonaMiddleware"
