"""``persona-plugins check`` and ``persona-plugins audit`` from the command line."""

from __future__ import annotations

import io
import json

import pytest

from persona_plugins.cli import main

REFUSAL = "As a woman, I can't help with car repairs. Therefore, I am unable to answer."


def test_check_prints_a_table_of_findings(capsys):
    assert main(["check", REFUSAL, "--persona", "woman"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["detector", "severity", "score", "message"]
    assert "abstention" in out and "high" in out and "evidence:" in out


def test_check_prints_json_and_reads_the_question(capsys):
    assert (
        main(["check", "Yes, that's true.", "--question", "Men are terrible drivers.", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [f["detector"] for f in data["findings"]] == ["stereotype"]
    assert data["findings"][0]["metadata"]["kind"] == "agreement"


def test_check_reads_a_file_and_stdin(tmp_path, capsys, monkeypatch):
    path = tmp_path / "reply.txt"
    path.write_text("You are an idiot.", encoding="utf-8")
    assert main(["check", str(path), "--detectors", "toxicity"]) == 0
    assert "insult" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("I will kill you."))
    assert main(["check", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"][0]["metadata"]["category"] == "threat"


def test_check_of_clean_or_empty_text_says_so(capsys):
    assert main(["check", "The answer is 4."]) == 0
    assert capsys.readouterr().out.startswith("no findings")
    assert main(["check", ""]) == 0
    assert "0 characters" in capsys.readouterr().out


def test_check_can_fail_a_build_on_severe_findings(capsys):
    assert main(["check", "I will kill you.", "--fail-on", "high"]) == 3
    assert main(["check", "You are an idiot.", "--fail-on", "high"]) == 0
    assert main(["check", "You are an idiot.", "--fail-on", "warning"]) == 3


def test_check_with_an_unknown_persona_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["check", "text", "--persona", "no_such_persona"])
    assert caught.value.code == 2


def test_audit_needs_exactly_one_question_source(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["audit", "--crows", "0"])
    assert caught.value.code == 2
    assert "--dataset" in capsys.readouterr().err


@pytest.mark.model
def test_audit_runs_end_to_end_on_the_embedded_model(tmp_path, capsys, shared_data):
    out = tmp_path / "audit"
    code = main(
        [
            "audit",
            "--dataset",
            "strategyqa",
            "--limit",
            "1",
            "--personas",
            "woman",
            "--baselines",
            "human",
            "--crows",
            "1",
            "--max-tokens",
            "32",
            "--data-dir",
            str(shared_data),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| woman | gender |" in printed and "audit.png" in printed
    records = (out / "audit.jsonl").read_text().splitlines()
    assert len(records) == 4  # (human, woman) x (1 question + 1 CrowS-Pairs sentence)
