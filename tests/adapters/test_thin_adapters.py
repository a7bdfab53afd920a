"""Adapters translate and delegate: no adapter module imports the core's policy modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"
POLICY = ("persona_plugins.guardrails", "persona_plugins.judging", "persona_plugins.refinement")
POLICY += ("persona_plugins.guard",)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path", sorted(ADAPTERS.rglob("*.py")), ids=lambda p: str(p.relative_to(ADAPTERS))
)
def test_no_adapter_module_imports_guard_judge_or_refinement_policy(path):
    policy = {
        name
        for name in imported_modules(path)
        if any(name == module or name.startswith(module + ".") for module in POLICY)
    }

    assert not policy, f"{path.name} imports policy modules: {sorted(policy)}"
