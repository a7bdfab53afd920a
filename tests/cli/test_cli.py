"""The persona-plugins command line, as a user meets it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import run
from tests.conftest import free_port


def test_personas_list_shows_the_catalog(capsys):
    code, out, _ = run(capsys, "personas", "list")
    assert code == 0
    for name in ("math_teacher", "pirate_captain", "physically_disabled", "average_human"):
        assert name in out


def test_personas_list_filters_by_kind_as_json(capsys):
    code, out, _ = run(capsys, "personas", "list", "--kind", "audit", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 16
    assert all(row["demographics"] for row in rows)


def test_personas_show_prints_the_system_prompt_of_each_template(capsys):
    for template, opening in (
        ("describe", "You are a patient"),
        ("adopt", "Adopt the identity of"),
        ("roleplay", "This conversation is a role-play"),
    ):
        code, out, _ = run(capsys, "personas", "show", "math_teacher", "--template", template)
        assert code == 0
        assert opening in out


def test_personas_validate_accepts_a_good_file_and_names_the_field_of_a_bad_one(
    capsys, tmp_path: Path
):
    good = tmp_path / "good.toml"
    good.write_text('name = "baker"\ndescription = "a village baker"\n')
    code, out, _ = run(capsys, "personas", "validate", str(good))
    assert code == 0 and "ok (baker" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: baker\ntraits: [kind]\n")
    code, _, err = run(capsys, "personas", "validate", str(bad))
    assert code == 2
    assert str(bad) in err and "description" in err
    assert err.count("\n") == 1, "one line, no traceback"


def test_personas_validate_reports_every_problem_of_every_file(capsys, tmp_path: Path):
    first = tmp_path / "a.yaml"
    first.write_text("name: baker\ntrait: [kind]\nstyle: [plain]\n")
    good = tmp_path / "b.toml"
    good.write_text('name = "baker"\ndescription = "a village baker"\n')
    broken = tmp_path / "c.json"
    broken.write_text('{"name": "x",\n')
    missing = tmp_path / "d.yaml"

    code, out, err = run(
        capsys, "personas", "validate", str(first), str(good), str(broken), str(missing)
    )

    assert code == 2
    assert out.splitlines() == [f"{good}: ok (baker: a village baker)"]
    lines = err.splitlines()
    assert lines[:3] == [
        f"{first}: field 'description': Field required",
        f"{first}: field 'style': Input should be a valid string",
        f"{first}: field 'trait': unknown field (did you mean 'traits'?)",
    ]
    assert lines[3].startswith(f"{broken}: line 2: invalid JSON")
    assert lines[4] == f"{missing}: file not found"
    assert len(lines) == 5 and "Traceback" not in err


def test_personas_validate_of_good_files_only_exits_0(capsys, tmp_path: Path):
    paths = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: {name}\ndescription: a {name}\n")
        paths.append(str(path))
    code, out, err = run(capsys, "personas", "validate", *paths)
    assert code == 0 and err == ""
    assert out.count(": ok (") == 2


def test_unknown_persona_is_one_line_and_exit_2(capsys):
    code, _, err = run(capsys, "ask", "hi", "--persona", "pirate_captian")
    assert code == 2
    assert "unknown persona 'pirate_captian'" in err and "pirate_captain" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_missing_model_file_is_one_line_and_exit_2(capsys, tmp_path: Path):
    code, _, err = run(capsys, "ask", "hi", "--model-path", str(tmp_path / "nope.gguf"))
    assert code == 2
    assert "model file not found" in err and err.count("\n") == 1


def test_unreachable_server_is_one_line_and_exit_1(capsys):
    port = free_port()  # nothing listens there
    code, _, err = run(
        capsys, "ask", "hi", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m"
    )
    assert code == 1
    assert "cannot reach the model server" in err and err.count("\n") == 1


def test_model_without_base_url_is_a_usage_error(capsys):
    code, _, err = run(capsys, "ask", "hi", "--model", "llama3")
    assert code == 2 and "--base-url" in err


def test_bad_config_file_names_the_file(capsys, tmp_path: Path):
    config = tmp_path / "pipeline.toml"
    config.write_text('ensemble = "sometimes"\n')
    code, _, err = run(capsys, "ask", "hi", "--config", str(config))
    assert code == 2
    assert str(config) in err and "ensemble" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("max_rounds = true\n", "'max_rounds': Input should be a valid integer, got True"),
        ("timeout_s = inf\n", "'timeout_s': Input should be a finite number, got inf"),
    ],
    ids=["nested-too-deeply", "bool-for-int", "infinite-timeout"],
)
def test_a_bad_config_file_is_one_line_naming_the_file_not_a_traceback(
    capsys, tmp_path: Path, text, expected
):
    config = tmp_path / "pipeline.toml"
    config.write_text(text)
    code, out, err = run(capsys, "ask", "hi", "--config", str(config))
    assert code == 2 and out == ""
    assert err.startswith(f"persona-plugins: error: {config}: ") and err.count("\n") == 1
    assert expected in err and "Traceback" not in err


def test_a_misspelt_model_setting_in_a_config_file_names_the_file_table_and_closest_name(
    capsys, tmp_path: Path
):
    config = tmp_path / "pipeline.toml"
    config.write_text('persona = "historian"\n\n[model_settings]\nmax_token = 20\n')
    code, _, err = run(capsys, "ask", "hi", "--config", str(config))
    assert code == 2
    assert f"{config}: invalid configuration: [model_settings]: " in err
    assert "unknown generation setting 'max_token' (did you mean 'max_tokens'?)" in err
    assert err.count("\n") == 1


# -- check: text, file or stdin, never mistaken for one another ------------------------------------


@pytest.mark.parametrize(
    "argument", ["reply.txt", "out/answer", "answers/reply.md", "results.json", "C:\\r.txt"]
)
def test_check_of_a_missing_path_is_an_error_not_a_text(capsys, tmp_path, monkeypatch, argument):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "check", argument, "--fail-on", "high")
    assert code == 2 and out == ""
    assert f"{argument}: no such file" in err
    assert "--file PATH" in err and "--text" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "text",
    ["The answer is 4.", "Yes.", "ok", "I will kill you.", "e.g. 3/4 of them", "Hello!", ""],
)
def test_check_of_an_ordinary_text_checks_the_text(capsys, tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "check", text, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["source"] == "text" and data["characters"] == len(text)


def test_check_text_checks_a_path_like_word_as_text(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("I will kill you.", encoding="utf-8")
    for word in ("and/or", "notes.txt"):
        code, out, _ = run(capsys, "check", "--text", word, "--json")
        assert code == 0
        data = json.loads(out)
        assert data["source"] == "text" and data["characters"] == len(word)
        assert data["findings"] == []


def test_check_file_reads_a_file_and_fails_on_a_missing_one(capsys, tmp_path):
    reply = tmp_path / "reply.txt"
    reply.write_text("I will kill you.", encoding="utf-8")
    for option in ("--file", "-f"):
        code, out, _ = run(capsys, "check", option, str(reply), "--fail-on", "high")
        assert code == 3 and "threat" in out

    code, out, err = run(capsys, "check", "--file", str(tmp_path / "nope.txt"))
    assert code == 2 and out == ""
    assert f"{tmp_path / 'nope.txt'}: file not found" in err

    code, _, err = run(capsys, "check", "--file", str(tmp_path))
    assert code == 2 and "not a file" in err


def test_check_still_reads_an_existing_file_given_as_the_argument(capsys, tmp_path):
    reply = tmp_path / "my reply.txt"  # a space: not path-like, but the file exists
    reply.write_text("The answer is 4.", encoding="utf-8")
    code, out, _ = run(capsys, "check", str(reply))
    assert code == 0
    assert f"16 characters from {reply} checked" in out


def test_check_reads_stdin_from_a_dash_or_file_dash(capsys, monkeypatch):
    import io

    for argv in (["check", "-", "--json"], ["check", "--file", "-", "--json"]):
        monkeypatch.setattr("sys.stdin", io.StringIO("I will kill you."))
        code, out, _ = run(capsys, *argv)
        assert code == 0
        data = json.loads(out)
        assert data["source"] == "stdin" and data["findings"][0]["severity"] == "high"


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "some text", "--file", "reply.txt"],
        ["check", "some text", "--text", "other text"],
        ["check", "--file", "reply.txt", "--text", "other text"],
    ],
)
def test_check_needs_exactly_one_input(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert "--file" in err or "not allowed with" in err


def test_plugins_lists_builtins_and_their_hooks(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert "inject_persona" in rows["persona_plugins.injection"]["hooks"]
    assert rows["persona_plugins.injection"]["source"] == "built-in"


@pytest.mark.model
def test_ask_answers_with_the_embedded_model_as_json(capsys):
    code, out, _ = run(
        capsys,
        "ask",
        "What is the capital of France?",
        "--persona",
        "historian",
        "--max-tokens",
        "40",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["text"].strip()
    assert result["persona"]["name"] == "historian"
    assert result["model_calls"] == 1
    assert 0 < result["usage"]["output_tokens"] <= 40
    assert result["prompt"][0]["role"] == "system"


@pytest.mark.model
def test_ask_with_a_config_file_and_console_trace(capsys, tmp_path: Path):
    config = tmp_path / "pipeline.toml"
    config.write_text('persona = "chef"\nensemble = "jekyll_hyde"\n')
    code, out, err = run(
        capsys,
        "ask",
        "How long should I boil an egg?",
        "--config",
        str(config),
        "--max-tokens",
        "32",
        "--trace",
        "console",
    )
    assert code == 0 and out.strip()
    # two candidates, plus two judge calls per attempt when they disagree
    assert re.search(r"model calls: (2|4|6) ", err)
    assert "invoke_workflow persona_pipeline" in err
    assert "persona_plugins generate_candidates" in err
    assert "chat SmolLM2" in err


@pytest.mark.server
def test_ask_against_an_openai_compatible_server(capsys, llama_server):
    code, out, err = run(
        capsys,
        "ask",
        "Say hello.",
        "--persona",
        "pirate_captain",
        "--base-url",
        llama_server,
        "--model",
        "smollm2",
        "--max-tokens",
        "24",
    )
    assert code == 0, err
    assert out.strip()
    assert "persona: pirate_captain" in err


@pytest.mark.model
def test_demo_runs_a_two_agent_team_and_prints_a_summary():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "persona_plugins.cli",
            "demo",
            "--max-tokens",
            "48",
            "--trace",
            "console",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[pirate_captain]" in proc.stdout and "[children_tutor]" in proc.stdout
    assert "Summary" in proc.stdout
    assert "total: 2 model calls" in proc.stdout
    # our spans nest under AutoGen's agent spans in the console tree
    assert "invoke_agent pirate_captain" in proc.stderr
    assert "  invoke_workflow persona_pipeline" in proc.stderr


def test_console_script_is_installed_and_prints_help():
    exe = Path(sys.executable).with_name("persona-plugins")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for command in ("demo", "ask", "personas", "plugins"):
        assert command in proc.stdout
