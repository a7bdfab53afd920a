"""Bulk checks: responses per second of ``persona-plugins check --jsonl`` with 1 and 2 workers.

A JSON-lines log of synthetic responses (100,000 by default) is written to a temporary folder:
answers of a few sentences, persona-induced refusals, stereotyping and toxic sentences, with a
question and one of six audit personas on most lines, and one bad line in a thousand. The command
runs in a fresh process per measurement (so neither run inherits the other's warm caches) with
the four built-in detectors, writing the findings to a file; the time is the one its summary
reports (reading, checking, writing the findings; not the interpreter's start). With 2 workers,
two processes check chunks of 500 lines while the command's own process reads and writes.

Reproduce: .venv/bin/python benchmarks/bench_bulk_check.py [--responses 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from results_md import machine_note, update_section

ROOT = Path(__file__).resolve().parents[1]
HEADING = "Bulk checks: check --jsonl throughput with 1 and 2 workers"
PERSONAS = ("woman", "man", "average_human", "human", "physically_disabled", "religious")
ANSWERS = [
    "The answer is 42. First multiply 6 by 7, which gives 42, and that is the whole result.",
    "Paris is the capital of France; it has been since the Middle Ages, with short breaks.",
    "To boil an egg, put it in boiling water for about eight minutes, then cool it in cold water.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in the leaves.",
    "I would start by listing the costs, then compare them month by month to find the savings.",
]
FLAGGED = [
    "As a woman, I can't answer math questions.",
    "Being a religious person, I am not able to discuss evolution with you.",
    "Honestly, women are bad at math.",
    "You are an absolute idiot and I will hurt you.",
    "I live in Paris and I am 40 years old.",
]
QUESTIONS = ["What is 6 times 7?", "What is the capital of France?", "How do I boil an egg?"]


def write_log(path: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as sink:
        for index in range(count):
            if index % 1000 == 999:
                sink.write('{"id": "broken", "response": \n')
                continue
            text = rng.choice(FLAGGED) if rng.random() < 0.2 else rng.choice(ANSWERS)
            row: dict[str, object] = {"id": index, "response": text}
            if rng.random() < 0.8:
                row["question"] = rng.choice(QUESTIONS)
                row["persona"] = rng.choice(PERSONAS)
            sink.write(json.dumps(row) + "\n")


def measure(log: Path, out: Path, workers: int) -> tuple[float, dict[str, object]]:
    argv = ["check", "--jsonl", str(log), "--workers", str(workers), "--out", str(out), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "persona_plugins.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"check --jsonl failed with status {done.returncode}: {done.stderr}")
    summary = json.loads(done.stdout)["summary"]
    return float(summary["seconds"]), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument(
        "--quick", action="store_true", help="5,000 responses; RESULTS.md untouched"
    )
    args = parser.parse_args()
    count = 5_000 if args.quick else args.responses
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.jsonl"
        write_log(log, count)
        outputs = {}
        times: list[float] = []
        for workers in (1, 2):
            out = Path(folder) / f"findings_{workers}.jsonl"
            elapsed, summary = measure(log, out, workers)
            times.append(elapsed)
            outputs[workers] = out.read_bytes()
            rows.append(
                [
                    str(workers),
                    f"{summary['responses']:,}",
                    f"{summary['bad_lines']:,}",
                    f"{summary['findings']:,}",
                    f"{elapsed:.1f}",
                    f"{summary['responses'] / elapsed:,.0f}",
                ]
            )
        same = outputs[1] == outputs[2]
    for row, elapsed in zip(rows, times, strict=True):
        row.append(f"{times[0] / elapsed:.2f}x")
    header = ["workers", "responses", "bad lines", "findings", "seconds", "responses/s", "speed-up"]
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(row) + " |" for row in rows]
    )
    print(table)
    print(f"findings identical with 1 and 2 workers: {'yes' if same else 'NO'}")
    if args.quick:
        return
    body = (
        f"{machine_note()}. {count:,} synthetic responses (one bad line in 1,000, skipped and "
        "reported), the four built-in detectors, findings written to a file; the command's own "
        "wall time. Findings identical (same lines, same order) with 1 and 2 workers: "
        f"{'yes' if same else 'NO'}. With 2 workers the parent process reads, sends and "
        "writes while two processes check; on a 2-core machine the three share both cores.\n\n"
        f"{table}\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_bulk_check.py --responses {count}`"
    )
    update_section(HEADING, body)


if __name__ == "__main__":
    main()
