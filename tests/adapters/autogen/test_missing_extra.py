"""The core imports without any framework, and says which extra the AutoGen adapter needs (the
install-line tests of every adapter: ``tests/adapters/test_missing_extra.py``)."""

from __future__ import annotations

import subprocess
import sys


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
