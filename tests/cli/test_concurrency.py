"""Concurrency in the evaluation harnesses (issue 15): ``--concurrency N`` keeps N questions in
flight, the figures are those of a sequential run whatever order the answers come back in, the
results file stays resumable after an interruption at any moment, and ``--base-url`` given
several times spreads the calls over a fleet, reported per server. Every model here is a fake
OpenAI-compatible server on loopback (tests/integrations/fake_openai_server.py)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from persona_plugins.cli._common import catalog
from persona_plugins.evaluation.audit import CrowsPair, run_audit
from persona_plugins.evaluation.datasets import Question
from persona_plugins.evaluation.jekyll_hyde import run_jekyll_hyde_eval
from persona_plugins.evaluation.progress import Progress
from persona_plugins.evaluation.refine import PersonaQuestion, run_refine_eval
from persona_plugins.evaluation.runner import run_bounded
from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel
from persona_plugins.persona import Persona
from tests.cli.helpers import run
from tests.integrations.fake_openai_server import FakeOpenAIServer, random_latency

QUESTIONS = [
    Question(f"q{i}", f"Is {i} an even number?", "yes" if i % 2 == 0 else "no", "yes_no")
    for i in range(10)
] + [Question(f"n{i}", f"What is {i} plus 2?", str(i + 2), "number") for i in range(6)]


def quiet() -> Progress:
    return Progress(io.StringIO(), tty=False, ticker=False)


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without what may differ between runs of the same figures (the chart's path)."""
    return {k: v for k, v in summary.items() if k not in ("chart",)}


def records(path: Path, key: str = "id") -> dict[str, dict[str, Any]]:
    lines = path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    keys = [r[key] if key == "id" else f"{r['kind']}|{r['persona']}|{r['id']}" for r in parsed]
    assert len(keys) == len(set(keys)), "no record is written twice"
    return dict(zip(keys, parsed, strict=True))


# -- the runner ------------------------------------------------------------------------------------


async def test_the_runner_keeps_at_most_n_items_in_flight_and_runs_each_once():
    running, most, seen = 0, 0, []

    async def work(item: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (item % 3))
        running -= 1
        return item * item

    finished = await run_bounded(
        range(25), work, concurrency=4, on_done=lambda item, result: seen.append((item, result))
    )
    assert finished == 25
    assert sorted(seen) == [(i, i * i) for i in range(25)]
    assert 1 < most <= 4


async def test_a_failing_item_cancels_the_others_in_flight_and_its_error_propagates():
    cancelled: list[int] = []
    started: list[int] = []

    async def work(item: int) -> None:
        started.append(item)
        if item == 2:
            await asyncio.sleep(0)
            raise RuntimeError("item 2 broke")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    with pytest.raises(RuntimeError, match="item 2 broke"):
        await run_bounded(range(100), work, concurrency=4)
    assert sorted(started) == [0, 1, 2, 3], "no item starts after the failure"
    assert sorted(cancelled) == [0, 1, 3]


async def test_cancelling_the_run_cancels_every_item_in_flight():
    cancelled: list[int] = []
    started = asyncio.Event()

    async def work(item: int) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    task = asyncio.ensure_future(run_bounded(range(10), work, concurrency=3))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
async def test_concurrency_must_be_a_whole_number_of_at_least_one(bad):
    async def work(item: int) -> int:
        return item

    with pytest.raises(ValueError, match="concurrency must be a whole number of at least 1"):
        await run_bounded([1], work, concurrency=bad)


# -- the same figures, whatever the order ----------------------------------------------------------


async def test_jekyll_hyde_figures_are_the_same_sequential_and_concurrent(tmp_path):
    runs = {}
    with FakeOpenAIServer(random_latency(seed=1, high=0.03)) as server:
        peaks = {}
        for concurrency in (1, 6):
            server.max_in_flight = 0
            model = OpenAICompatibleChatModel(server.base_url, model="fake")
            out = tmp_path / f"c{concurrency}"
            summary = await run_jekyll_hyde_eval(
                QUESTIONS,
                model,
                out_dir=out,
                dataset="tiny",
                persona="math_teacher",
                progress=quiet(),
                concurrency=concurrency,
            )
            runs[concurrency] = (summary, records(out / "jekyll_hyde_tiny.jsonl"))
            peaks[concurrency] = server.max_in_flight
    # a question makes at most 2 calls at once (the candidates, the judge's two orders)
    assert peaks[1] <= 2 < peaks[6], peaks
    (sequential, seq_records), (concurrent, con_records) = runs[1], runs[6]
    assert concurrent == sequential
    assert con_records == seq_records
    assert 0 < sequential["systems"]["jekyll_hyde"]["correct"] < len(QUESTIONS)


async def test_audit_figures_are_the_same_sequential_and_concurrent(tmp_path):
    known = catalog()
    personas = [known[name] for name in ("average_human", "human", "woman", "man")]
    crows = [
        CrowsPair(f"crows-{i}", f"People from place {i} are lazy.", "origin") for i in range(4)
    ]
    runs = {}
    with FakeOpenAIServer(random_latency(seed=2, high=0.03)) as server:
        for concurrency in (1, 8):
            server.max_in_flight = 0
            out = tmp_path / f"c{concurrency}"
            summary = await run_audit(
                QUESTIONS,
                OpenAICompatibleChatModel(server.base_url, model="fake"),
                personas,
                out_dir=out,
                crows=crows,
                title="tiny",
                progress=quiet(),
                concurrency=concurrency,
            )
            runs[concurrency] = (summary, records(out / "audit.jsonl", key="kind"))
            assert server.max_in_flight <= concurrency  # one call per answer: N in flight at most
            if concurrency > 1:
                assert server.max_in_flight > 1  # and the calls really overlapped
    (sequential, seq_records), (concurrent, con_records) = runs[1], runs[8]
    assert figures(concurrent) == figures(sequential)
    assert con_records == seq_records
    assert (tmp_path / "c8" / "audit.md").read_text() == (tmp_path / "c1" / "audit.md").read_text()
    versus = sequential["personas"]["woman"]["vs"]["average_human"]
    assert versus["baseline_only_correct"] + versus["persona_only_correct"] > 0


async def test_refine_figures_are_the_same_sequential_and_concurrent(tmp_path):
    items = [
        PersonaQuestion(f"pg-{i}", Persona(name=f"p{i}", description=f"a baker of {i}"), "t", "Q?")
        for i in range(5)
    ]
    runs = {}
    with FakeOpenAIServer(random_latency(seed=3, high=0.02)) as server:
        peaks = {}
        for concurrency in (1, 5):
            server.max_in_flight = 0
            out = tmp_path / f"c{concurrency}"
            summary = await run_refine_eval(
                items,
                OpenAICompatibleChatModel(server.base_url, model="fake"),
                out_dir=out,
                strategies=("none", "sequential"),
                progress=quiet(),
                concurrency=concurrency,
            )
            runs[concurrency] = (summary, records(out / "refine.jsonl"))
            peaks[concurrency] = server.max_in_flight
    assert peaks[1] == 1 < peaks[5], peaks
    assert runs[5] == runs[1]


# -- interrupted and resumed ---------------------------------------------------------------------


class SavedWatch(Progress):
    """A quiet progress report that sets ``event`` once ``after`` items are saved."""

    def __init__(self, event: asyncio.Event, after: int):
        super().__init__(io.StringIO(), tty=False, ticker=False)
        self.event, self.after = event, after

    def advance(self, status: str = "", token: int | None = None) -> None:
        super().advance(status, token)
        if self.completed >= self.after:
            self.event.set()


async def test_an_interrupted_concurrent_run_resumes_without_duplicates_or_partial_lines(tmp_path):
    path = tmp_path / "jekyll_hyde_tiny.jsonl"
    args: dict[str, Any] = {"dataset": "tiny", "persona": "math_teacher"}
    with FakeOpenAIServer(random_latency(seed=4, low=0.005, high=0.03)) as server:
        model = OpenAICompatibleChatModel(server.base_url, model="fake")
        reference = await run_jekyll_hyde_eval(
            QUESTIONS, model, out_dir=tmp_path / "ref", progress=quiet(), **args
        )
        three_saved = asyncio.Event()
        watching = SavedWatch(three_saved, after=3)
        task = asyncio.ensure_future(
            run_jekyll_hyde_eval(
                QUESTIONS, model, out_dir=tmp_path, progress=watching, concurrency=4, **args
            )
        )
        await three_saved.wait()
        task.cancel()  # what Ctrl-C does to the harness
        with pytest.raises(asyncio.CancelledError):
            await task
        text = path.read_text()
        assert text.endswith("\n"), "only whole lines"
        saved = records(path)
        assert 3 <= len(saved) < len(QUESTIONS)
        with path.open("a") as sink:  # and a line a killed process left half written
            sink.write('{"id": "q9", "gold": "no", "syst')
        progress = quiet()
        resumed = await run_jekyll_hyde_eval(
            QUESTIONS, model, out_dir=tmp_path, progress=progress, concurrency=4, **args
        )
    assert progress.resumed == len(saved)
    final = [line for line in path.read_text().splitlines() if line.strip()]
    complete = [json.loads(line) for line in final if not line.endswith('"syst')]
    assert sorted(r["id"] for r in complete) == sorted(q.id for q in QUESTIONS)
    assert resumed == reference


# -- the command line: --concurrency, fleets, calls per server ------------------------------------


def write_questions(tmp_path: Path, count: int = 12) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text(
        "".join(
            json.dumps({"question": f"Is {i} even?", "answer": "yes" if i % 2 == 0 else "no"})
            + "\n"
            for i in range(count)
        )
    )
    return path


def audit_argv(tmp_path: Path, out: str, *extra: str) -> list[str]:
    return [
        *("audit", "--questions", str(write_questions(tmp_path))),
        *("--personas", "woman", "--baselines", "human", "--crows", "0"),
        *("--out", str(tmp_path / out), "--json", *extra),
    ]


def test_audit_over_a_fleet_spreads_the_calls_and_reports_them_per_server(capsys, tmp_path):
    with FakeOpenAIServer(0.01) as first, FakeOpenAIServer(0.01) as second:
        argv = audit_argv(tmp_path, "fleet", "--base-url", first.base_url)
        argv += ["--base-url", second.base_url, "--concurrency", "4"]
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        summary = json.loads(out)
        servers = summary["servers"]
        assert [s["base_url"] for s in servers] == [first.base_url, second.base_url]
        assert [s["calls"] for s in servers] == [first.requests, second.requests]
        assert sum(s["calls"] for s in servers) == 24  # 2 personas x 12 questions
        assert first.requests > 0 and second.requests > 0
        assert max(first.max_in_flight, second.max_in_flight) <= 4  # N questions in flight
        assert summary["concurrency"] == 4

        code, out, err = run(capsys, *audit_argv(tmp_path, "one", "--base-url", first.base_url))
        assert code == 0, err
        alone = json.loads(out)
    assert alone["concurrency"] == 8, "the documented default with --base-url"
    assert alone["personas"] == summary["personas"]


def test_the_fleet_may_come_from_the_environment_and_the_text_summary_names_it(
    capsys, tmp_path, monkeypatch
):
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        monkeypatch.setenv("PERSONA_PLUGINS_BASE_URLS", f"{first.base_url}, {second.base_url}")
        argv = [a for a in audit_argv(tmp_path, "env") if a != "--json"]
        code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert first.requests + second.requests == 24 and first.requests and second.requests
    assert f"calls per server: {first.base_url} {first.requests}, " in out
    assert f"model: default at {first.base_url}, {second.base_url}" in err


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_concurrency_must_be_a_positive_whole_number(capsys, tmp_path, value):
    code, _, err = run(capsys, *audit_argv(tmp_path, "bad", "--concurrency", value))
    assert code == 2
    assert "--concurrency" in err
