"""Nothing but the Semantic Kernel adapter imports Semantic Kernel (it costs about 1.5 s); the
install-line tests of every adapter are in ``tests/adapters/test_missing_extra.py``."""

from __future__ import annotations

import json
import subprocess
import sys

ADAPTER = "persona_plugins.adapters.semantic_kernel"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def test_neither_the_core_nor_the_autogen_adapter_imports_semantic_kernel():
    done = run_python(
        "import json, sys\n"
        "import persona_plugins, persona_plugins.cli\n"
        "from persona_plugins import PersonaPipeline\n"
        "import persona_plugins.adapters.autogen\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('semantic_kernel'))))\n"
    )
    assert json.loads(done.stdout) == []


def test_the_core_works_and_the_adapter_explains_itself_without_semantic_kernel():
    done = run_python(
        "import sys\n"
        "sys.modules['semantic_kernel'] = None\n"
        "import persona_plugins\n"
        "from persona_plugins import PersonaPipeline, Persona\n"
        "try:\n"
        f"    import {ADAPTER}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    assert done.stdout.startswith("MissingExtraError")
    assert 'pip install "persona-plugins[semantic-kernel]"' in done.stdout


def test_the_cli_names_the_install_line_without_semantic_kernel():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "sys.modules['semantic_kernel'] = None\n"
            "from persona_plugins.cli import main\n"
            "sys.exit(main(['ask', 'Hello?', '--framework', 'semantic-kernel']))\n",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert 'pip install "persona-plugins[semantic-kernel]"' in done.stderr
    assert "Traceback" not in done.stderr
