"""The evaluation harnesses: data loading, resumable runs, summaries, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_plugins.evaluation.datasets import DATASETS, DataNotFoundError, load_dataset
from persona_plugins.evaluation.jekyll_hyde import markdown_table, summarize
from tests.cli.helpers import run


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_reasoning_set_loads_with_gold_answers(shared_data, name):
    questions = load_dataset(name, shared_data, limit=20)
    assert len(questions) == 20
    assert all(q.text.strip() and q.gold for q in questions)
    if questions[0].answer_format == "choice":
        assert all("Answer Choices: (A)" in q.text for q in questions)


def test_bigbench_options_are_shuffled_so_a_model_always_saying_a_gets_no_credit(shared_data):
    golds = [q.gold for q in load_dataset("date_understanding", shared_data)]
    assert golds.count("A") < len(golds) / 3


def test_missing_data_is_reported_clearly(capsys, tmp_path: Path):
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        load_dataset("gsm8k", tmp_path)
    code, _, err = run(
        capsys, "eval", "jekyll-hyde", "--dataset", "gsm8k", "--data-dir", str(tmp_path)
    )
    assert code == 2  # bad input (tests/cli/test_data.py covers the message in full)
    assert "data set 'gsm8k' not found" in err and err.count("\n") == 1
    assert f"{tmp_path} (--data-dir: missing reasoning/gsm8k_test.jsonl)" in err


def test_summary_counts_accuracy_calls_and_judge_statistics():
    def rec(persona, neutral, jh, judged, consistent):
        return {
            "systems": {
                "persona": {"correct": persona, "calls": 1, "tokens": 10},
                "neutral": {"correct": neutral, "calls": 1, "tokens": 10},
                "jekyll_hyde": {
                    "correct": jh,
                    "calls": 4 if judged else 2,
                    "tokens": 30,
                    "judged": judged,
                    "consistent": consistent,
                    "fallback": judged and not consistent,
                },
            }
        }

    summary = summarize(
        [
            rec(True, False, True, True, True),
            rec(False, True, True, True, False),
            rec(True, True, True, False, False),
            rec(False, False, False, False, False),
        ]
    )
    jh = summary["systems"]["jekyll_hyde"]
    assert jh["accuracy"] == 0.75 and jh["calls_per_question"] == 3.0
    assert jh["judged_share"] == 0.5 and jh["consistent_share_of_judged"] == 0.5
    assert summary["systems"]["persona"]["accuracy"] == 0.5
    table = markdown_table("strategyqa", summary, "test model")
    assert "| jekyll_hyde | 75.0% | 3/4 | 3.00 |" in table


@pytest.mark.model
def test_eval_jekyll_hyde_runs_resumes_and_writes_its_reports(capsys, tmp_path: Path):
    argv = [
        "eval",
        "jekyll-hyde",
        "--dataset",
        "strategyqa",
        "--limit",
        "2",
        "--persona",
        "math_teacher",
        "--max-tokens",
        "48",
        "--out",
        str(tmp_path),
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "| jekyll_hyde |" in out and "| spp |" in out
    lines = (tmp_path / "jekyll_hyde_strategyqa.jsonl").read_text().splitlines()
    assert len(lines) == 2
    summary = json.loads((tmp_path / "jekyll_hyde_strategyqa.json").read_text())
    assert summary["questions"] == 2 and set(summary["systems"]) == {
        "persona",
        "neutral",
        "jekyll_hyde",
        "spp",
    }
    assert err.startswith("jekyll-hyde strategyqa: 2 questions")  # the start line, at once
    assert "jekyll-hyde strategyqa [2/2]" in err  # the progress line

    # a second run finds both answers already there: nothing is redone
    code, out_again, err_again = run(capsys, *argv)
    assert code == 0 and out_again == out
    assert "all 2 already saved, nothing to run" in err_again
    assert len((tmp_path / "jekyll_hyde_strategyqa.jsonl").read_text().splitlines()) == 2


@pytest.mark.model
def test_eval_refine_scores_each_strategy(capsys, tmp_path: Path, shared_data):
    code, out, err = run(
        capsys,
        "eval",
        "refine",
        "--limit",
        "1",
        "--strategies",
        "none,adaptive",
        "--max-tokens",
        "48",
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    assert "| none |" in out and "| adaptive |" in out
    record = json.loads((tmp_path / "refine.jsonl").read_text().splitlines()[0])
    assert set(record["strategies"]) == {"none", "adaptive"}
    assert record["strategies"]["none"]["refine_calls"] == 0
    assert record["strategies"]["adaptive"]["refine_calls"] >= 1  # at least the planner
    # unreadable judge scores are counted per strategy and explained, never silently n/a
    summary = json.loads((tmp_path / "refine.json").read_text())
    for strategy in ("none", "adaptive"):
        entry = summary["strategies"][strategy]
        assert entry["scores_asked"] == 3
        assert entry["unreadable_scores"] == sum(
            score is None for score in record["strategies"][strategy]["scores"].values()
        )
        assert f" | {entry['unreadable_scores']}/3 | " in out
    assert "`n/a`: no reply of that strategy got a readable score" in out


def test_a_results_file_cut_short_by_an_interruption_resumes(tmp_path: Path):
    from persona_plugins.evaluation.records import load_records

    path = tmp_path / "jekyll_hyde_svamp.jsonl"
    path.write_text('{"id": "a", "systems": {}}\n{"id": "b", "syst')
    assert list(load_records(path)) == ["a"]
    assert path.read_text().endswith("\n"), "the next record starts on a line of its own"
