"""Fixtures of the core suite (see ``doubles.py`` for the test doubles)."""

from __future__ import annotations

import pluggy
import pytest

from persona_plugins import Persona
from tests.core.doubles import without_hooks

#: Stages whose built-in plugins a test may want out of the way (judge, refine, guard).
OPTIONAL_STAGE_HOOKS = (
    "judge_candidates",
    "register_refiners",
    "plan_refinement",
    "merge_reviews",
    "check_response",
    "resolve_findings",
)


@pytest.fixture
def bare_manager(plugin_manager: pluggy.PluginManager) -> pluggy.PluginManager:
    """The built-in plugin manager without any judge, refiner, planner or guard plugin.

    Persona selection, injection and candidates stay; what the other stages do is then decided
    only by the plugins a test registers.
    """
    return without_hooks(plugin_manager, *OPTIONAL_STAGE_HOOKS)


@pytest.fixture
def teacher() -> Persona:
    """A small persona with every kind of field filled in."""
    return Persona(
        name="test_teacher",
        description="a patient test teacher",
        traits=["patient", "exact"],
        style="Answers in one short sentence.",
        statements=["I teach arithmetic.", "I have a cat named Euclid."],
        demographics={"age": "adult"},
        metadata={"kind": "test"},
    )
