"""Without its framework installed, importing an adapter names the exact ``pip install`` line,
and the adapter imports again once the framework is back. Each adapter's own file keeps what is
particular to it (the core importing without any framework, nothing else importing Semantic
Kernel)."""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import pytest

from persona_plugins import MissingExtraError, PersonaPluginsError


class Adapter(NamedTuple):
    module: str
    extra: str
    framework: str  # the top-level package the adapter needs
    needed: tuple[str, ...]  # the modules it imports first, each hidden in turn
    public: str  # a class it exports


ADAPTERS = [
    Adapter(
        "persona_plugins.adapters.autogen",
        "autogen",
        "autogen_core",
        ("autogen_core", "autogen_core.models"),
        "PersonaChatCompletionClient",
    ),
    Adapter(
        "persona_plugins.adapters.semantic_kernel",
        "semantic-kernel",
        "semantic_kernel",
        ("semantic_kernel", "semantic_kernel.connectors.ai.chat_completion_client_base"),
        "PersonaPlugin",
    ),
    Adapter(
        "persona_plugins.adapters.agent_framework",
        "agent-framework",
        "agent_framework",
        ("agent_framework", "agent_framework.observability"),
        "PersonaMiddleware",
    ),
]
MISSING = [(adapter, name) for adapter in ADAPTERS for name in adapter.needed]


def hide(monkeypatch: pytest.MonkeyPatch, adapter: Adapter, *names: str) -> None:
    """Make ``names`` unimportable and forget every loaded module of ``adapter`` (restored
    afterwards)."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    for loaded in [m for m in sys.modules if m.startswith(adapter.module)]:
        monkeypatch.delitem(sys.modules, loaded)


@pytest.mark.parametrize(("adapter", "missing"), MISSING, ids=[name for _, name in MISSING])
def test_importing_an_adapter_without_its_framework_names_the_install_line(
    monkeypatch, adapter, missing
):
    hide(monkeypatch, adapter, missing)

    with pytest.raises(MissingExtraError) as raised:
        importlib.import_module(adapter.module)

    message = str(raised.value)
    assert f'pip install "persona-plugins[{adapter.extra}]"' in message
    assert adapter.framework in message
    assert raised.value.extra == adapter.extra
    assert isinstance(raised.value, ImportError), "code that catches ImportError keeps working"
    assert isinstance(raised.value, PersonaPluginsError)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=[a.extra for a in ADAPTERS])
def test_an_adapter_imports_again_once_its_framework_is_back(monkeypatch, adapter):
    with monkeypatch.context() as patch:
        hide(patch, adapter, adapter.framework)
        with pytest.raises(MissingExtraError):
            importlib.import_module(adapter.module)

    module = importlib.import_module(adapter.module)
    assert getattr(module, adapter.public).__name__ == adapter.public
