"""Progress reporting and Ctrl-C for the long commands (``eval jekyll-hyde``, ``eval refine``,
``audit``): the start line, the ticker, timing of this run's items only, interruption, and the
unreadable-score report of ``eval refine``. Fakes only: no test here needs the embedded model."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import persona_plugins.cli as cli
from persona_plugins import Persona
from persona_plugins.cli import _common
from persona_plugins.evaluation.datasets import Question
from persona_plugins.evaluation.jekyll_hyde import run_jekyll_hyde_eval
from persona_plugins.evaluation.progress import (
    Progress,
    format_duration,
    run_interruptible,
    running_calls,
)
from persona_plugins.evaluation.refine import (
    PersonaQuestion,
    markdown_table,
    run_refine_eval,
    summarize,
)
from tests.core.doubles import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def log_progress(
    clock: FakeClock | None = None, interval: float = 0
) -> tuple[Progress, io.StringIO]:
    """A progress report as it looks in a log file (not a terminal), without the ticker thread."""
    stream = io.StringIO()
    clock = clock or FakeClock()
    return Progress(stream, interval=interval, clock=clock, tty=False, ticker=False), stream


# -- the progress report -------------------------------------------------------------------------


def test_the_start_line_names_the_run_the_count_the_model_and_the_results_file():
    progress, stream = log_progress()
    progress.start(
        "jekyll-hyde gsm8k",
        100,
        done=12,
        unit="questions",
        model="my-model at http://host/v1",
        output="out/jekyll_hyde_gsm8k.jsonl",
    )
    assert stream.getvalue() == (
        "jekyll-hyde gsm8k: 100 questions; 12 already saved, 88 to run; "
        "model: my-model at http://host/v1; results: out/jekyll_hyde_gsm8k.jsonl\n"
    )


def test_speed_and_eta_count_only_the_items_of_this_run():
    clock = FakeClock()
    progress, stream = log_progress(clock)
    progress.start("refine", 100, done=50)
    clock.now += 4.0
    progress.advance("cooking")
    line = stream.getvalue().splitlines()[-1]
    # 4 s for the one item timed (15 a minute); 49 items left; the 50 resumed ones are done but
    # not timed
    assert line == "refine [ 51/100]  51% | 15.0 items/min | eta 3m 16s | cooking"
    assert progress.saved == 51


def test_throughput_counts_items_finished_per_minute_whatever_number_run_at_once():
    clock = FakeClock()
    progress, stream = log_progress(clock)
    progress.start("audit", 20, unit="answers")
    tokens = [progress.begin() for _ in range(4)]  # four in flight, all finished after 10 s
    clock.now += 10.0
    for token in tokens:
        progress.advance(token=token)
    line = stream.getvalue().splitlines()[-1]
    # 4 answers in 10 s: 24 a minute; 16 left: 40 s
    assert line == "audit [ 4/20]  20% | 24.0 answers/min | eta 40s"


def test_with_several_items_in_flight_the_ticker_says_how_many_and_the_longest():
    clock = FakeClock()
    progress, stream = log_progress(clock)
    progress.start("audit", 10)
    first = progress.begin()
    clock.now += 30
    progress.begin()
    progress.begin()
    clock.now += 15
    progress.tick()
    assert (
        stream.getvalue().splitlines()[-1] == "audit [ 0/10]   0% | 3 running, the longest for 45s"
    )
    progress.advance(token=first)
    progress.tick()
    assert stream.getvalue().splitlines()[-1].endswith("| 2 running, the longest for 15s")


def test_in_a_log_lines_are_rate_limited_but_the_first_and_last_item_always_show():
    clock = FakeClock()
    progress, stream = log_progress(clock, interval=10)
    progress.start("audit", 5)
    for step in (1.0, 1.0, 1.0, 9.0, 1.0):
        clock.now += step
        progress.advance()
    shown = [line.split(" |")[0] for line in stream.getvalue().splitlines()[1:]]
    assert shown == ["audit [1/5]  20%", "audit [4/5]  80%", "audit [5/5] 100%"]


def test_the_ticker_line_says_which_item_is_running_and_for_how_long():
    clock = FakeClock()
    progress, stream = log_progress(clock)
    progress.start("audit strategyqa", 40, done=3)
    clock.now += 75
    progress.tick()
    assert stream.getvalue().splitlines()[-1] == (
        "audit strategyqa [ 3/40]   8% | item 4 running for 1m 15s"
    )


def test_on_a_terminal_the_line_is_redrawn_in_place_and_ended_on_close():
    stream = io.StringIO()
    progress = Progress(stream, clock=FakeClock(), tty=True, ticker=False)
    progress.start("refine", 3)
    progress.advance("a")
    progress.tick()
    progress.close()
    text = stream.getvalue()
    assert text.startswith("refine: 3 items\n")
    drawn = text.split("\n")[1]
    assert drawn.count("\r") == 2 and "[1/3]" in drawn and "item 2 running" in drawn
    assert text.endswith("\n")


def test_the_interruption_note_says_what_is_saved_and_how_to_resume():
    progress, _ = log_progress()
    assert progress.interrupted_note() == ""  # interrupted before the run started
    progress.start("audit", 10, done=2, output="res/audit.jsonl")
    progress.advance()
    assert progress.interrupted_note() == (
        "3 of 10 results saved in res/audit.jsonl; run the same command again to resume"
    )


def test_durations_read_naturally():
    assert [format_duration(s) for s in (0.4, 59, 60, 3599, 3600, 90061)] == [
        "0s",
        "59s",
        "1m 00s",
        "59m 59s",
        "1h 00m",
        "25h 01m",
    ]


# -- the harnesses report at once and while an item runs -----------------------------------------

QUESTIONS = [Question(f"q{i}", f"Is {i} even?", "yes", "yes_no") for i in range(3)]


async def test_the_start_line_is_written_before_the_first_model_call(tmp_path):
    stream = io.StringIO()
    seen_at_first_call: list[str] = []

    def answer(messages):
        if not seen_at_first_call:
            seen_at_first_call.append(stream.getvalue())
        return "The answer is yes."

    await run_jekyll_hyde_eval(
        QUESTIONS[:1],
        ScriptedModel(default=answer),
        out_dir=tmp_path,
        dataset="tiny",
        persona="math_teacher",
        systems=("persona", "neutral", "jekyll_hyde"),
        model_label="scripted",
        progress=Progress(stream, tty=False, ticker=False),
    )
    assert seen_at_first_call[0] == (
        "jekyll-hyde tiny: 1 questions (systems: persona, neutral, jekyll_hyde); model: scripted; "
        f"results: {tmp_path / 'jekyll_hyde_tiny.jsonl'}\n"
    )


class WatchedStream(io.StringIO):
    """A stream that tells when a line saying the first item is running has been written."""

    def __init__(self) -> None:
        super().__init__()
        self.ticked = threading.Event()

    def write(self, text: str) -> int:
        if "item 1 running for" in text:
            self.ticked.set()
        return super().write(text)


async def test_the_ticker_reports_while_a_slow_item_is_still_running(tmp_path):
    stream = WatchedStream()

    async def slow(messages):
        # The first item does not finish until the ticker has reported it as running.
        assert await asyncio.to_thread(stream.ticked.wait, 60), "no ticker line"  # hang guard
        return "The answer is yes."

    await run_jekyll_hyde_eval(
        QUESTIONS[:1],
        ScriptedModel(default=slow),
        out_dir=tmp_path,
        dataset="tiny",
        persona="math_teacher",
        systems=("persona", "neutral", "jekyll_hyde"),
        progress=Progress(stream, interval=0.05, tty=False),
    )
    lines = stream.getvalue().splitlines()
    running = next(i for i, line in enumerate(lines) if "item 1 running for" in line)
    finished = next(i for i, line in enumerate(lines) if "[1/1]" in line and "persona=+" in line)
    assert 0 < running < finished


async def test_a_resumed_run_says_so_and_times_only_its_own_items(tmp_path):
    clock = FakeClock()

    def answer(messages):
        clock.now += 5.0  # every model call takes 5 s on the fake clock
        return "The answer is yes."

    args = {
        "out_dir": tmp_path,
        "dataset": "tiny",
        "persona": "math_teacher",
        "systems": ("persona", "neutral", "jekyll_hyde"),
    }
    first, _ = log_progress(clock)
    await run_jekyll_hyde_eval(QUESTIONS[:2], ScriptedModel(default=answer), **args, progress=first)
    clock.now += 3600  # a long pause between the two runs
    second, stream = log_progress(clock)
    await run_jekyll_hyde_eval(QUESTIONS, ScriptedModel(default=answer), **args, progress=second)
    lines = stream.getvalue().splitlines()
    assert (
        "3 questions (systems: persona, neutral, jekyll_hyde); 2 already saved, 1 to run"
        in (lines[0])
    )
    # one item timed: its 2 model calls (persona and neutral agree, so no judge) of 5 s each
    assert lines[-1].startswith("jekyll-hyde tiny [3/3] 100% | 6.0 questions/min | eta 0s")


# -- eval refine says why a score is n/a ---------------------------------------------------------


def refine_row(*scores: tuple[int | None, int | None, int | None]) -> list[dict]:
    return [
        {
            "strategies": {
                "none": {
                    "scores": dict(zip(("persona_fit", "factuality", "coherence"), s, strict=True)),
                    "refine_calls": 0,
                    "calls_per_turn": 1,
                    "changed": False,
                }
            }
        }
        for s in scores
    ]


def test_refine_summary_counts_unreadable_scores_per_strategy():
    summary = summarize(refine_row((4, None, None), (None, None, None)))
    entry = summary["strategies"]["none"]
    assert entry["unreadable_scores"] == 5 and entry["scores_asked"] == 6
    assert entry["unscored_replies"] == 1
    assert entry["persona_fit"] == 4 and entry["factuality"] is None
    table = markdown_table(summary, "test model")
    assert "| none | 4.00 | n/a | n/a | 5/6 | 1.00 | 0% |" in table
    assert "`n/a`: no reply of that strategy got a readable score" in table
    assert "5 of 6 scores could not be read." in table


async def test_refine_on_a_model_that_never_follows_the_rubric_says_so(tmp_path):
    items = [PersonaQuestion("pg-0", Persona(name="p", description="a baker"), "t", "Bread?")]
    summary = await run_refine_eval(
        items,
        ScriptedModel(default="I like bread a lot."),
        out_dir=tmp_path,
        strategies=("none", "sequential"),
        progress=log_progress()[0],
    )
    for strategy in ("none", "sequential"):
        assert summary["strategies"][strategy]["unreadable_scores"] == 3
    assert "No score at all could be read" in summary["markdown"]
    saved = json.loads((tmp_path / "refine.json").read_text())
    assert saved["unreadable_scores"] == 6 and saved["scores_asked"] == 6
    record = json.loads((tmp_path / "refine.jsonl").read_text())
    assert record["strategies"]["none"]["judge_reply"] == "I like bread a lot."


def test_eval_refine_prints_the_unreadable_scores(monkeypatch, capsys, tmp_path, shared_data):
    monkeypatch.setattr(_common, "build_model", lambda args: ScriptedModel(default="Nice."))
    code = cli.main(
        ["eval", "refine", "--limit", "1", "--strategies", "none", "--out", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "| none | n/a | n/a | n/a | 3/3 |" in out
    assert "No score at all could be read" in out
    assert err.startswith("refine: 1 persona questions (strategies: none; max rounds 1);")


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_blocking_calls_run_in_daemon_threads_that_are_not_waited_for():
    async def call() -> bool:
        return await asyncio.to_thread(lambda: threading.current_thread().daemon)

    assert run_interruptible(call()) is True
    assert running_calls() == 0


#: Runs the command line with a model whose calls block in a worker thread (as a llama.cpp call
#: does) from call number ``block_at`` on; it writes ``marker`` when the first call blocks.
BLOCKING_CLI = """
import asyncio, signal, sys, threading
from pathlib import Path

import persona_plugins.cli as cli
from persona_plugins import Completion, Usage
from persona_plugins.cli import _common

# A terminal's Ctrl-C, even when the test runner was started with SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
marker, block_at, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]


class BlockingModel:
    model_name = "blocking"
    provider_name = "test-double"

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def call(self, messages):
        with self.lock:
            self.calls += 1
            blocks = 0 < block_at <= self.calls
        if blocks:
            marker.write_text("blocked")
            threading.Event().wait()  # never returns, and cannot be interrupted
        return Completion(text="The answer is yes.", usage=Usage(input_tokens=3, output_tokens=2))

    async def complete(self, messages, **settings):
        return await asyncio.to_thread(self.call, list(messages))


_common.build_model = lambda args: BlockingModel()
sys.exit(cli.main(argv))
"""


def run_blocking_cli(tmp_path: Path, block_at: int, argv: list[str]) -> tuple[int, str]:
    """Run the command; when ``block_at`` > 0, press Ctrl-C once a model call has blocked."""
    script = tmp_path / "blocking_cli.py"
    script.write_text(BLOCKING_CLI)
    marker = tmp_path / "blocked"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marker), str(block_at), *argv],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if block_at:
            deadline = time.monotonic() + 120  # a hang guard only
            while not marker.exists():
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "no model call blocked"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        # The blocked call never returns: had the command waited for it, this would time out.
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def commands(tmp_path: Path) -> dict[str, tuple[list[str], str, int]]:
    """Per command: its arguments, its results file, and the call that blocks."""
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(json.dumps({"question": f"Is {i} even?", "answer": "yes"}) + "\n" for i in range(3))
    )
    out = tmp_path / "out"
    return {
        "audit": (
            [
                *("audit", "--questions", str(questions), "--personas", "woman"),
                *("--baselines", "human", "--crows", "0", "--out", str(out)),
            ],
            "audit.jsonl",
            4,  # one call per answer: three answers saved, then a blocked one
        ),
        "eval jekyll-hyde": (
            [
                *("eval", "jekyll-hyde", "--dataset", "strategyqa", "--limit", "4"),
                *("--persona", "math_teacher", "--out", str(out)),
            ],
            "jekyll_hyde_strategyqa.jsonl",
            7,  # three calls per question (persona, neutral, SPP): two questions saved
        ),
        "eval refine": (
            ["eval", "refine", "--limit", "3", "--strategies", "none", "--out", str(out)],
            "refine.jsonl",
            5,  # a draft and a score per question: two questions saved
        ),
    }


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a process there")
@pytest.mark.parametrize("command", ["audit", "eval jekyll-hyde", "eval refine"])
def test_ctrl_c_stops_at_once_saves_complete_lines_and_the_rerun_resumes(
    request, tmp_path, command
):
    if command.startswith("eval"):
        request.getfixturevalue("shared_data")  # skips when the shared data sets are absent
    argv, name, block_at = commands(tmp_path)[command]
    results = tmp_path / "out" / name

    code, err = run_blocking_cli(tmp_path, block_at, argv)
    assert code == 130, err
    lines = results.read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)  # complete lines only
    total = 6 if command == "audit" else 4 if "jekyll" in command else 3
    assert len(lines) < total
    assert err.splitlines()[-1] == (
        f"persona-plugins: interrupted: {len(lines)} of {total} results saved in {results}; "
        "run the same command again to resume"
    )
    assert err.splitlines()[0].endswith(f"results: {results}")  # the start line came first

    code, err = run_blocking_cli(tmp_path, 0, argv)
    assert code == 0, err
    assert f"{len(lines)} already saved, {total - len(lines)} to run" in err.splitlines()[0]
    again = results.read_text().splitlines()
    assert again[: len(lines)] == lines and len(again) == total


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a process there")
def test_ctrl_c_with_several_answers_in_flight_keeps_whole_lines_and_resumes_without_repeats(
    tmp_path,
):
    argv, name, block_at = commands(tmp_path)["audit"]
    argv = [*argv, "--concurrency", "3"]
    results = tmp_path / "out" / name

    code, err = run_blocking_cli(tmp_path, block_at, argv)
    assert code == 130, err
    lines = results.read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)  # complete lines only
    assert len(lines) < 6
    assert f"{len(lines)} of 6 results saved" in err.splitlines()[-1]

    code, err = run_blocking_cli(tmp_path, 0, argv)
    assert code == 0, err
    again = [json.loads(line) for line in results.read_text().splitlines()]
    keys = [(r["persona"], r["id"]) for r in again]
    assert len(keys) == 6 and len(set(keys)) == 6, "every answer once, none repeated"
