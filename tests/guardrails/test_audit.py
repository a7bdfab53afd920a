"""The persona bias audit: McNemar's exact test, the report, resuming an interrupted run, inputs."""

from __future__ import annotations

import json
from fractions import Fraction
from math import comb

import pytest

from persona_plugins import ConfigError
from persona_plugins.evaluation.audit import (
    CROWS_PROMPT,
    load_crows_pairs,
    load_question_file,
    mcnemar_exact,
    run_audit,
    summarize,
)
from persona_plugins.evaluation.datasets import DataNotFoundError, Question
from persona_plugins.pipeline import collect_personas
from tests.core.doubles import ScriptedModel


def two_sided_binomial(b: int, c: int) -> float:
    """Independent reference: the probability of outcomes no more likely than the one seen."""
    n = b + c
    probs = [Fraction(comb(n, k), 2**n) for k in range(n + 1)]
    seen = probs[b]
    return float(min(Fraction(1), sum(p for p in probs if p <= seen)))


@pytest.mark.parametrize("b", range(0, 16, 3))
@pytest.mark.parametrize("c", range(0, 16, 4))
def test_mcnemar_exact_matches_the_two_sided_binomial_test(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(two_sided_binomial(b, c))
    assert mcnemar_exact(b, c) == mcnemar_exact(c, b)


def test_mcnemar_known_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 1) == pytest.approx(0.01171875)
    assert mcnemar_exact(0, 6) == pytest.approx(0.03125)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


QUESTIONS = [
    Question(f"q{i}", f"Is {i} even?", "yes" if i % 2 == 0 else "no", "yes_no") for i in range(4)
]


@pytest.fixture(scope="module")
def personas():
    from persona_plugins import new_plugin_manager

    catalog = collect_personas(new_plugin_manager(load_entrypoints=False))
    return [catalog["human"], catalog["physically_disabled"]]


def answers(messages):
    """The baseline answers every question; the disabled persona refuses half of them."""
    system = messages[0].content if messages[0].role == "system" else ""
    user = messages[-1].content
    if user.startswith("Here is a statement"):
        return "I agree." if "physically" in system else "I disagree, that is a stereotype."
    even = any(f"Is {i} even" in user for i in (0, 2))
    if "physically" in system and even:
        return "As a physically-disabled person, I am unable to answer this question."
    return f"The answer is {'yes' if even else 'no'}."


async def test_the_report_has_every_measure_per_persona(tmp_path, personas, shared_data):
    from persona_plugins.evaluation.audit import CrowsPair

    crows = [CrowsPair("c1", "Poor people are lazy.", "socioeconomic")]
    summary = await run_audit(
        QUESTIONS,
        ScriptedModel(default=answers),
        personas,
        out_dir=tmp_path,
        baselines=["human"],
        crows=crows,
        title="test",
    )
    human = summary["personas"]["human"]
    disabled = summary["personas"]["physically_disabled"]
    assert human["accuracy"] == 1.0 and human["refusal_rate"] == 0.0
    assert disabled["accuracy"] == 0.5 and disabled["refusal_rate"] == 0.5
    versus = disabled["vs"]["human"]
    assert versus["relative_drop"] == 0.5
    assert (versus["baseline_only_correct"], versus["persona_only_correct"]) == (2, 0)
    assert versus["mcnemar_p"] == pytest.approx(0.5)
    assert disabled["stereotype_agreement"] == 1.0 and human["stereotype_agreement"] == 0.0
    for name in ("audit.jsonl", "audit.json", "audit.md", "audit.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "audit.md").read_text()
    assert (
        "| physically_disabled | disability | 50.0% (2/4) | 50.0% | 50.0% | 2 / 0 | 0.500"
        in markdown
    )
    assert json.loads((tmp_path / "audit.json").read_text())["personas"]["human"]["n"] == 4


async def test_an_interrupted_audit_resumes_without_redoing_work(tmp_path, personas):
    crashing = ScriptedModel(*[answers] * 5, default=RuntimeError("the machine went to sleep"))
    with pytest.raises(Exception, match=r"every candidate failed|went to sleep"):
        await run_audit(QUESTIONS, crashing, personas, out_dir=tmp_path, baselines=["human"])
    written = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(written) == 5
    with (tmp_path / "audit.jsonl").open("a") as sink:
        sink.write('{"kind": "qa", "persona": "hu')  # a line cut short by the interruption

    counting = ScriptedModel(default=answers)
    summary = await run_audit(QUESTIONS, counting, personas, out_dir=tmp_path, baselines=["human"])
    assert len(counting.calls) == 8 - 5
    assert summary["personas"]["physically_disabled"]["n"] == 4
    again = ScriptedModel(default=answers)
    await run_audit(QUESTIONS, again, personas, out_dir=tmp_path, baselines=["human"])
    assert again.calls == []


def test_summary_without_shared_questions_has_no_comparison(personas):
    records = [{"kind": "qa", "persona": "human", "id": "q1", "correct": True, "refused": False}]
    summary = summarize(records, personas, ["human"])
    assert summary["personas"]["physically_disabled"]["vs"] == {}
    assert summary["personas"]["physically_disabled"]["accuracy"] is None


def test_crows_pairs_are_stereotyping_sentences_sampled_with_a_seed(shared_data):
    first = load_crows_pairs(shared_data, limit=5, seed=1)
    assert len(first) == 5 and first == load_crows_pairs(shared_data, limit=5, seed=1)
    assert first != load_crows_pairs(shared_data, limit=5, seed=2)
    assert all(p.sentence and p.id.startswith("crows-") for p in first)
    assert "{sentence}" in CROWS_PROMPT


def test_a_question_file_is_read_with_formats_guessed(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "2+2?", "answer": 4}\n'
        '{"question": "Is the sky blue?", "answer": "Yes"}\n'
        '{"id": "c", "question": "Pick one", "answer": "b", "format": "choice"}\n'
    )
    questions = load_question_file(path)
    assert [(q.id, q.gold, q.answer_format) for q in questions] == [
        ("q1", "4", "number"),
        ("q2", "yes", "yes_no"),
        ("c", "B", "choice"),
    ]


@pytest.mark.parametrize(
    "content,error",
    [
        ('{"question": "no answer"}\n', "needs a 'question' and an 'answer'"),
        ("not json\n", "invalid JSON"),
        ('{"question": "x", "answer": 1, "format": "essay"}\n', "format 'essay'"),
        ("[1, 2]", "is not an object"),
    ],
)
def test_a_bad_question_file_names_the_problem(tmp_path, content, error):
    path = tmp_path / "q.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=error):
        load_question_file(path)


def test_a_missing_question_file_is_a_data_error(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_question_file(tmp_path / "nope.jsonl")


@pytest.mark.model
async def test_a_small_audit_on_the_embedded_model(tmp_path, embedded_model, personas, shared_data):
    from persona_plugins.evaluation.datasets import load_dataset

    questions = load_dataset("strategyqa", shared_data, limit=2)
    summary = await run_audit(
        questions,
        embedded_model,
        personas,
        out_dir=tmp_path,
        baselines=["human"],
        crows=load_crows_pairs(shared_data, limit=1),
        settings={"max_tokens": 48},
    )
    for entry in summary["personas"].values():
        assert entry["n"] == 2 and entry["crows_n"] == 1
        assert 0 <= entry["accuracy"] <= 1
    assert (tmp_path / "audit.png").exists()
