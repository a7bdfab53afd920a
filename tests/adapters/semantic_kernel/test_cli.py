"""``persona-plugins ask --framework ...`` and ``demo --framework semantic-kernel`` on the embedded
model."""

from __future__ import annotations

import json

import pytest

from persona_plugins.cli import main

pytestmark = pytest.mark.model


@pytest.mark.parametrize("framework", ["semantic-kernel", "autogen"])
def test_ask_answers_through_an_adapter(capsys, framework):
    code = main(
        [
            "ask",
            "Where is the treasure?",
            "--persona",
            "pirate_captain",
            "--framework",
            framework,
            "--max-tokens",
            "24",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0 and out.strip()
    assert "[persona: pirate_captain (config) | chosen: persona | model calls: 1" in err


def test_ask_through_semantic_kernel_prints_the_turn_as_json(capsys):
    code = main(
        [
            "ask",
            "What is 12 + 30?",
            "--persona",
            "math_teacher",
            "--ensemble",
            "jekyll_hyde",
            "--framework",
            "semantic-kernel",
            "--max-tokens",
            "16",
            "--json",
        ]
    )

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {c["name"] for c in result["candidates"]} >= {"persona", "neutral"}
    assert result["persona"]["name"] == "math_teacher"


def test_ask_through_semantic_kernel_reports_an_unreachable_server_in_one_line(capsys):
    with pytest.raises(SystemExit) as raised:
        main(
            [
                "ask",
                "Hello?",
                "--framework",
                "semantic-kernel",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--model",
                "smollm2",
            ]
        )

    err = capsys.readouterr().err
    assert raised.value.code == 1
    assert err.startswith("persona-plugins: error: cannot reach the model server")
    assert len(err.strip().splitlines()) == 1, "SK's own error log stays quiet"


def test_demo_runs_a_semantic_kernel_group_chat_of_personas(capsys):
    code = main(["demo", "--framework", "semantic-kernel", "--max-tokens", "24"])

    out = capsys.readouterr().out
    assert code == 0
    assert "[pirate_captain] " in out and "[children_tutor] " in out
    assert out.index("[pirate_captain] ") < out.index("[children_tutor] ")
    assert "(Semantic Kernel group chat)" in out
    assert "total: 2 model calls" in out


def test_an_unknown_framework_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["ask", "Hi", "--framework", "langchain"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
