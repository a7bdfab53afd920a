"""``persona-plugins check --jsonl FILE``: every response of a JSON-lines log checked by the
guardrail detectors in ``--workers`` processes, findings written as JSON lines in input order, a
summary (by detector and severity, rate per persona), and bad lines reported by number and
skipped, never fatal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from persona_plugins.evaluation.bulk_check import BadLine, ScanSummary, scan_lines
from tests.cli.helpers import run

REFUSAL = "As a woman, I can't answer math questions."
THREAT = "You are an absolute idiot and I will hurt you."
CLEAN = "The answer is 4."

LOG = [
    {"id": 1, "response": REFUSAL, "question": "What is 2+2?", "persona": "woman"},
    {"id": 2, "response": CLEAN, "question": "What is 2+2?", "persona": "woman"},
    "not json at all",
    {"id": 3, "response": 5},
    "",
    {"id": 4, "response": THREAT, "persona": "nobody_by_that_name"},
    [1, 2],
    {"id": "five", "response": THREAT, "persona": "man"},
    {"id": 6, "question": "no response here"},
    {"id": 7, "response": CLEAN},
]
#: line number -> what the report says about it
BAD = {
    3: "not JSON",
    4: "'response' must be text, got a number",
    6: "unknown persona 'nobody_by_that_name'",
    7: "an array, not an object",
    9: "no 'response'",
}


def write_log(path: Path, rows: list, repeat: int = 1) -> Path:
    lines = []
    for _ in range(repeat):
        lines += [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"response": "\xff broken"}\n')
    return path


def findings_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_lines_are_reported_by_number_and_skipped_and_the_rest_is_checked(
    capsys, tmp_path, workers
):
    log = write_log(tmp_path / "log.jsonl", LOG)
    code, out, err = run(capsys, "check", "--jsonl", str(log), "--workers", workers)
    assert code == 0, err
    for line, problem in BAD.items():
        assert f"{log}: line {line}: {problem}" in err
    assert f"{log}: line 11: not UTF-8 text" in err
    found = findings_of(out)
    assert {(f["line"], f["id"], f["detector"]) for f in found} == {
        (1, 1, "abstention"),
        (8, "five", "toxicity"),
    }
    assert all(f["persona"] in ("woman", "man") and f["severity"] for f in found)
    assert f"checked 4 responses with {workers} worker" in err
    assert "6 bad lines skipped" in err


def test_valid_json_that_python_cannot_use_is_a_bad_line_and_a_cut_character_is_checked(
    capsys, tmp_path
):
    huge = "1" * 5000  # more digits than Python converts to an int
    log = tmp_path / "odd.jsonl"
    log.write_text(
        '{"id": ' + huge + ', "response": "fine"}\n'
        '{"id": 2, "response": "You are an absolute idiot \\ud800 and I will hurt you."}\n'
        '{"id": "a\\ud800b", "response": "You are an absolute idiot and I will hurt you."}\n',
        encoding="utf-8",
    )
    code, out, err = run(capsys, "check", "--jsonl", str(log), "--workers", "1")
    assert code == 0, err
    assert f"{log}: line 1: not usable JSON" in err
    toxic = [f for f in findings_of(out) if f["detector"] == "toxicity"]
    assert {f["line"] for f in toxic} == {2, 3}
    assert toxic[0]["id"] == 2 and toxic[-1]["id"] == "a\ufffdb"


def test_two_workers_write_the_same_findings_in_the_same_order_as_one(capsys, tmp_path):
    log = write_log(tmp_path / "log.jsonl", LOG, repeat=40)
    outputs = {}
    for workers in ("1", "2"):
        out_file = tmp_path / f"findings{workers}.jsonl"
        code, out, err = run(
            capsys, "check", "--jsonl", str(log), "--workers", workers, "--out", str(out_file)
        )
        assert code == 0, err
        outputs[workers] = out_file.read_text()
        assert "checked 160 responses" in out  # with --out, the summary goes to stdout
    assert outputs["1"] == outputs["2"]
    lines = [f["line"] for f in findings_of(outputs["1"])]
    assert lines == sorted(lines) and len(lines) >= 80


def test_the_summary_counts_by_detector_and_severity_and_the_rate_per_persona(capsys, tmp_path):
    log = write_log(tmp_path / "log.jsonl", LOG, repeat=3)
    out_file = tmp_path / "findings.jsonl"
    code, out, err = run(
        capsys, "check", "--jsonl", str(log), "--workers", "2", "--out", str(out_file), "--json"
    )
    assert code == 0, err
    summary = json.loads(out)["summary"]
    found = findings_of(out_file.read_text())
    by_detector: dict[str, dict[str, int]] = {}
    for f in found:
        counts = by_detector.setdefault(f["detector"], {})
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    assert summary["by_detector"] == by_detector
    assert summary["findings"] == len(found)
    assert summary["responses"] == 12 and summary["bad_lines"] == 3 * 5 + 1
    assert summary["personas"]["woman"] == {"responses": 6, "with_findings": 3, "rate": 0.5}
    assert summary["personas"]["man"]["rate"] == 1.0
    assert summary["personas"]["(none)"]["rate"] == 0.0
    assert summary["workers"] == 2 and summary["responses_per_second"] > 0


def test_fail_on_gives_status_3_when_a_finding_is_that_severe(capsys, tmp_path):
    log = write_log(tmp_path / "log.jsonl", LOG)
    code, _, _ = run(capsys, "check", "--jsonl", str(log), "--workers", "1", "--fail-on", "high")
    assert code == 3
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps({"response": CLEAN}) + "\n")
    code, out, err = run(capsys, "check", "--jsonl", str(clean), "--fail-on", "info")
    assert code == 0 and out == ""
    assert "checked 1 responses" in err and "0 with findings" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "2", "--text", "hi"], "--workers goes with --jsonl FILE"),
        (["--jsonl", "LOG", "--persona", "woman"], "--persona does not go with --jsonl"),
        (["--jsonl", "LOG", "--detectors", "abstention:judge"], "offline detectors only"),
        (["--jsonl", "missing.jsonl"], "missing.jsonl: file not found"),
        (["--jsonl", "LOG", "--workers", "0"], "--workers"),
    ],
)
def test_bulk_options_misused_are_one_line_errors(capsys, tmp_path, argv, message):
    log = write_log(tmp_path / "log.jsonl", LOG)
    argv = [
        str(log) if a == "LOG" else str(tmp_path / a) if a.endswith(".jsonl") else a for a in argv
    ]
    code, _, err = run(capsys, "check", *argv)
    assert code == 2
    assert message in err


def test_scan_lines_keeps_input_order_across_chunks_and_workers():
    rows = [json.dumps({"id": i, "response": THREAT if i % 3 == 0 else CLEAN}) for i in range(50)]
    rows.insert(10, "{broken")
    source = io.BytesIO(("\n".join(rows) + "\n").encode())
    results = list(scan_lines(source, ["toxicity"], workers=2, chunk_lines=7))
    assert [r.line for r in results] == list(range(1, 52))
    assert isinstance(results[10], BadLine) and results[10].line == 11
    summary = ScanSummary()
    summary.add_all(results)
    assert summary.responses == 50 and summary.bad_lines == 1
    assert summary.with_findings == 17  # 0, 3, ..., 48
