"""What the command line echoes from files, plugins and models never reaches the terminal with
control characters in it: no escape sequence can clear the screen, retitle the window, hide text
or fake a line, whatever a persona file or a model reply holds."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_plugins.cli._common import printable, printable_json
from persona_plugins.cli.demo import fit, print_reply
from tests.cli.helpers import run
from tests.integrations.fake_openai_server import FakeOpenAIServer

#: Clear the screen, set the window title, ring the bell, a C1 escape, a carriage return that
#: would overwrite the line, and a right-to-left override.
HOSTILE = "\x1b[2J\x1b]0;owned\x07calm\x9b31m\rFAKE\u202eok"

#: Nothing of this may reach the terminal.
FORBIDDEN = ["\x1b", "\x07", "\x9b", "\r", "\u202e"]


def assert_clean(*outputs: str) -> None:
    for output in outputs:
        found = [repr(c) for c in FORBIDDEN if c in output]
        assert not found, f"{found} reached the terminal in {output!r}"


def persona_file(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps({"name": "hostile", "description": HOSTILE, **fields}))
    return path


# -- the helper ----------------------------------------------------------------------------------


def test_printable_removes_control_characters_and_keeps_the_text():
    assert printable(HOSTILE) == "[2J]0;ownedcalm31mFAKEok"
    assert printable("line one\r\nline\ttwo\n") == "line one\nline\ttwo\n"
    assert printable("a\nb\tc", one_line=True) == "a b c"
    assert printable("\x00\x08\x0b\x0c\x7f\x85\u2066x\u2069") == "x"
    assert printable("Grüße, 東京, émoji 🙂") == "Grüße, 東京, émoji 🙂"


def test_printable_json_is_the_same_json_value_with_nothing_raw():
    value = {"text": HOSTILE + "\x7f\x85", "n": 1}
    for ascii_only in (True, False):
        output = printable_json(value, ensure_ascii=ascii_only)
        assert_clean(output)
        assert "\x7f" not in output and "\x85" not in output
        assert json.loads(output) == value


# -- persona files -------------------------------------------------------------------------------


def test_personas_validate_strips_escape_sequences_from_a_description(capsys, tmp_path):
    code, out, err = run(capsys, "personas", "validate", str(persona_file(tmp_path)))

    assert code == 0
    assert "ok (hostile: [2J]0;ownedcalm31mFAKEok)" in out
    assert out.count("\n") == 1, "one line per file"
    assert_clean(out, err)


def test_personas_validate_strips_them_from_the_problems_it_reports(capsys, tmp_path):
    path = persona_file(tmp_path, **{"\x1b[2Jtrait\rs": ["x"]})

    code, out, err = run(capsys, "personas", "validate", str(path))

    assert code == 2
    assert "[2Jtraits" in err
    assert_clean(out, err)


@pytest.mark.parametrize("as_json", [False, True])
def test_personas_show_strips_them_from_the_persona_and_its_prompt(capsys, tmp_path, as_json):
    argv = ["personas", "show", str(persona_file(tmp_path))] + (["--json"] if as_json else [])

    code, out, err = run(capsys, *argv)

    assert code == 0
    assert_clean(out, err)
    if as_json:
        assert json.loads(out)["description"] == HOSTILE, "JSON keeps the value, escaped"
    else:
        assert "description: [2J]0;ownedcalm31mFAKEok" in out


def test_a_config_file_error_quoting_a_hostile_key_is_printed_clean(capsys, tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text('"\\u001b[2Jgaurd" = "monitor"\n')

    code, out, err = run(capsys, "ask", "hi", "--config", str(config))

    assert code == 2 and "[2Jgaurd" in err
    assert_clean(out, err)


def test_check_strips_them_from_the_evidence_it_quotes(capsys, tmp_path):
    text = tmp_path / "reply.txt"
    text.write_text(f"I will kill you.\x1b[2J {HOSTILE}", encoding="utf-8")

    code, out, err = run(capsys, "check", "--file", str(text), "--detectors", "toxicity")

    assert code == 0 and "toxicity" in out
    assert_clean(out, err)


# -- model replies -------------------------------------------------------------------------------


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """An OpenAI-compatible server on loopback whose every answer carries :data:`HOSTILE`."""
    with FakeOpenAIServer(reply=lambda _messages: f"Paris. {HOSTILE}") as server:
        yield server.base_url


@pytest.mark.parametrize("as_json", [False, True])
def test_ask_strips_escape_sequences_from_the_model_reply(capsys, hostile_server, as_json):
    argv = ["ask", "Capital of France?", "--base-url", hostile_server, "--persona", "historian"]

    code, out, err = run(capsys, *argv, *(["--json"] if as_json else []))

    assert code == 0
    assert_clean(out, err)
    if as_json:
        assert json.loads(out)["text"] == f"Paris. {HOSTILE}", "JSON keeps the value, escaped"
    else:
        assert out.startswith("Paris. [2J]0;ownedcalm31mFAKEok")


def test_the_demo_prints_replies_and_descriptions_clean(capsys):
    print_reply("agent\x1b[2J", f"Ahoy!\n{HOSTILE}")
    out = capsys.readouterr().out

    assert out == "[agent[2J] Ahoy!\n[2J]0;ownedcalm31mFAKEok\n\n"
    assert_clean(out, fit(HOSTILE, 44))


def test_an_error_message_is_printed_clean(capsys):
    from persona_plugins.cli._common import fail

    with contextlib.suppress(SystemExit):
        fail(f"bad file: {HOSTILE}", 2)

    err = capsys.readouterr().err
    assert err == "persona-plugins: error: bad file: [2J]0;ownedcalm31mFAKEok\n"
