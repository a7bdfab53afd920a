"""The Agent Framework examples run as a user would run them, on the embedded model."""

from __future__ import annotations

import pytest

from tests.examples.test_examples import assert_each_agent_spoke, run_example


@pytest.mark.model
def test_agent_framework_agent_example_answers_then_streams_as_the_persona():
    out = run_example("examples/agent_framework_agent.py").stdout
    assert out.count("[captain] ") == 2
    assert "persona: pirate_captain, model calls: 2" in out
    assert "guard: " in out


@pytest.mark.model
def test_agent_framework_workflow_example_runs_both_persona_agents_in_turn():
    out = run_example("examples/agent_framework_workflow.py").stdout
    assert "[user] Why did people build castles?" in out
    assert out.index("[historian] ") < out.index("[children_tutor] ")
    assert_each_agent_spoke(out, "historian", "children_tutor")
    assert "historian: 1 model call(s)" in out and "children_tutor: 1 model call(s)" in out
