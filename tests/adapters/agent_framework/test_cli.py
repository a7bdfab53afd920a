"""``persona-plugins ask --framework agent-framework`` and ``demo --framework agent-framework``."""

from __future__ import annotations

import pytest

from tests.cli.helpers import run


@pytest.mark.model
def test_ask_answers_through_an_agent_with_the_persona_middleware(capsys):
    code, out, err = run(
        capsys,
        *("ask", "Where is the treasure?", "--persona", "pirate_captain"),
        *("--framework", "agent-framework", "--max-tokens", "24"),
    )

    assert code == 0 and out.strip()
    assert "[persona: pirate_captain (config) | chosen: persona | model calls: 1" in err
    assert "| 0.0 s]" not in err, "the turn's duration is measured"


@pytest.mark.model
def test_demo_runs_an_agent_framework_group_chat_of_personas(capsys):
    code, out, _ = run(capsys, "demo", "--framework", "agent-framework", "--max-tokens", "24")

    assert code == 0
    assert "[pirate_captain]" in out and "[children_tutor]" in out
    assert "(Agent Framework group chat)" in out
    assert "total: 2 model calls" in out


def test_ask_reports_an_unreachable_server_in_one_line(capsys):
    code, _, err = run(
        capsys,
        *("ask", "Hello?", "--framework", "agent-framework"),
        *("--base-url", "http://127.0.0.1:9/v1", "--model", "smollm2"),
    )

    assert code == 1
    assert err.startswith("persona-plugins: error: cannot reach the model server")
    assert len(err.strip().splitlines()) == 1
