"""``audit --write-batch FILE`` and ``audit --read-batch RESULTS``: the audit's requests as OpenAI
batch JSON lines, and a batch engine's result file scored into the same audit files. The batch
engine here is a small script of the test's own (:func:`run_batch`) posting each request to a fake
OpenAI-compatible server; the live audit against that server is the reference."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx

from tests.cli.helpers import run
from tests.integrations.fake_openai_server import FakeOpenAIServer


def run_batch(base_url: str, batch: Path, results: Path, *, fail: set[int] = frozenset()) -> None:
    """What a batch engine does: answer each request line, writing OpenAI batch result lines (in
    an order of its own); the requests numbered in ``fail`` come back as errors."""
    requests = [json.loads(line) for line in batch.read_text().splitlines()]
    rows = []
    with httpx.Client(base_url=base_url.removesuffix("/v1")) as client:
        for number, request in enumerate(requests):
            if number in fail:
                rows.append(
                    {"custom_id": request["custom_id"], "response": None, "error": {"code": "x"}}
                )
                continue
            answer = client.request(request["method"], request["url"], json=request["body"])
            rows.append(
                {
                    "id": f"batch_req_{number}",
                    "custom_id": request["custom_id"],
                    "response": {"status_code": answer.status_code, "body": answer.json()},
                    "error": None,
                }
            )
    random.Random(0).shuffle(rows)
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))


def audit_options(tmp_path: Path) -> list[str]:
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"question": f"Is {i} even?", "answer": "yes" if i % 2 == 0 else "no"})
            + "\n"
            for i in range(8)
        )
    )
    return [
        *("audit", "--questions", str(questions), "--personas", "woman,man"),
        *("--baselines", "human", "--crows", "0", "--max-tokens", "64", "--model", "fake"),
    ]


def test_a_batch_round_trip_scores_the_same_audit_as_a_live_run(capsys, tmp_path):
    options = audit_options(tmp_path)
    batch, results = tmp_path / "batch.jsonl", tmp_path / "results.jsonl"
    code, out, err = run(capsys, *options, "--write-batch", str(batch))
    assert code == 0, err
    assert "wrote 24 requests" in out  # 3 personas x 8 questions
    lines = [json.loads(line) for line in batch.read_text().splitlines()]
    assert len(lines) == 24 and len({line["custom_id"] for line in lines}) == 24
    first = lines[0]
    assert set(first) == {"custom_id", "method", "url", "body"}
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["custom_id"].startswith("qa|human|q1#")
    assert first["body"]["model"] == "fake" and first["body"]["max_tokens"] == 64
    assert first["body"]["messages"][-1]["content"].startswith("Is 0 even?")
    assert not (tmp_path / "audit-results").exists(), "writing the batch scores nothing"

    with FakeOpenAIServer() as server:
        run_batch(server.base_url, batch, results)
        assert server.requests == 24
        live = tmp_path / "live"
        code, out, err = run(
            capsys, *options, "--base-url", server.base_url, "--out", str(live), "--json"
        )
        assert code == 0, err
        reference = json.loads(out)
        assert server.requests == 48, "the live audit sent the same 24 requests again"

    scored = tmp_path / "scored"
    code, out, err = run(
        capsys, *options, "--read-batch", str(results), "--out", str(scored), "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["personas"] == reference["personas"]
    for name in ("audit.jsonl", "audit.md", "audit.json"):
        assert (scored / name).exists()
    saved = json.loads((scored / "audit.json").read_text())
    assert saved["personas"] == reference["personas"]
    live_records = {
        (r["persona"], r["id"]): r
        for r in map(json.loads, (live / "audit.jsonl").read_text().splitlines())
    }
    batch_records = {
        (r["persona"], r["id"]): r
        for r in map(json.loads, (scored / "audit.jsonl").read_text().splitlines())
    }
    assert batch_records == live_records


def test_results_missing_or_failed_are_named_before_anything_is_scored(capsys, tmp_path):
    options = audit_options(tmp_path)
    batch, results = tmp_path / "batch.jsonl", tmp_path / "results.jsonl"
    assert run(capsys, *options, "--write-batch", str(batch))[0] == 0
    with FakeOpenAIServer() as server:
        run_batch(server.base_url, batch, results, fail={3})
    with results.open("a") as sink:
        sink.write("not a result line\n")
    out_dir = tmp_path / "scored"
    code, _, err = run(capsys, *options, "--read-batch", str(results), "--out", str(out_dir))
    assert code == 2
    assert "1 of 24 requests have no usable result (qa|human|q4)" in err
    assert "the engine failed it" in err and "line 25: not a batch result" in err
    assert not (out_dir / "audit.json").exists()

    # a batch written for other options does not match
    code, _, err = run(
        capsys, *options[:-2], "--model", "fake", "--max-tokens", "32", "--read-batch", str(results)
    )
    assert code == 2 and "24 of 24 requests have no usable result" in err
