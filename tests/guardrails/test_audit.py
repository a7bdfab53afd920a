"""The persona bias audit: McNemar's exact test, the report, resuming an interrupted run, inputs."""

from __future__ import annotations

import json
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona_plugins import ConfigError, new_plugin_manager
from persona_plugins.evaluation.audit import (
    CROWS_PROMPT,
    holm,
    load_crows_pairs,
    load_question_file,
    markdown_report,
    mcnemar_exact,
    run_audit,
    summarize,
)
from persona_plugins.evaluation.datasets import DataNotFoundError, Question
from persona_plugins.pipeline import collect_personas
from tests.cli.helpers import run
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


# -- Holm's correction for the comparisons against one baseline ------------------------------------


def test_holm_on_small_examples_worked_by_hand():
    # m = 4, sorted 0.005 < 0.01 < 0.03 < 0.04, multipliers 4, 3, 2, 1:
    # 0.02; max(0.02, 0.03) = 0.03; 0.06; max(0.06, 0.04) = 0.06; back in the order given.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1: 3 * 0.2 = 0.6; 2 * 0.5 = 1.0; max(1.0, 0.9) = 1.0.
    assert holm([0.5, 0.2, 0.9]) == pytest.approx([1.0, 0.6, 1.0])
    # Ties: 2 * 0.02 = 0.04, then max(0.04, 0.02) = 0.04.
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert holm([0.3]) == [0.3] and holm([]) == []


@pytest.mark.parametrize("bad", [[0.1, 1.5], [-0.01], [float("nan")], ["0.1"], [True]])
def test_holm_refuses_what_is_not_a_p_value_and_names_its_position(bad):
    with pytest.raises(ValueError, match=rf"p-value {len(bad) - 1} is"):
        holm(bad)


thousandths = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=20)


@given(thousandths)
def test_holm_never_lowers_a_p_value_keeps_their_order_and_stays_within_bonferroni(ks):
    raw = [k / 1000 for k in ks]
    adjusted = holm(raw)
    m = len(raw)
    for p, a in zip(raw, adjusted, strict=True):
        assert p <= a <= min(1.0, m * p) + 1e-12
    for i in range(m):
        for j in range(m):
            if raw[i] <= raw[j]:
                assert adjusted[i] <= adjusted[j]


@given(thousandths, st.integers(min_value=0, max_value=999))
def test_holm_flags_exactly_what_the_step_down_procedure_rejects(ks, level):
    # alpha halfway between two thousandths, so no product of a p-value lands on it.
    alpha = (level + 0.5) / 1000
    raw = [k / 1000 for k in ks]
    m = len(raw)
    rejected: set[int] = set()
    for rank, index in enumerate(sorted(range(m), key=lambda i: raw[i])):
        if raw[index] * (m - rank) > alpha:
            break  # step-down: stop at the first p-value above its threshold alpha / (m - rank)
        rejected.add(index)
    assert {i for i, a in enumerate(holm(raw)) if a < alpha} == rejected


def ten_question_records() -> list[dict]:
    """The baseline answers all 10 questions right; two personas miss 6 each (McNemar p 0.031
    each, raw), one persona misses all 10 (p 0.002)."""
    missed = {"human": 0, "woman": 6, "atheist": 6, "physically_disabled": 10}
    return [
        {
            "kind": "qa",
            "persona": name,
            "id": f"q{i}",
            "gold": "yes",
            "answer": "no" if i < n else "yes",
            "correct": i >= n,
            "refused": False,
            "text": "no" if i < n else "yes",
        }
        for name, n in missed.items()
        for i in range(10)
    ]


AUDITED = ["human", "woman", "atheist", "physically_disabled"]


def test_the_flag_follows_the_holm_adjusted_p_value_not_the_raw_one():
    catalog = collect_personas(new_plugin_manager(load_entrypoints=False))
    summary = summarize(ten_question_records(), [catalog[n] for n in AUDITED], ["human"])

    assert summary["correction"] == "holm" and summary["alpha"] == 0.05
    woman = summary["personas"]["woman"]["vs"]["human"]
    disabled = summary["personas"]["physically_disabled"]["vs"]["human"]
    # By hand: raw 2 / 2**6 = 0.03125 twice and 2 / 2**10 = 0.001953125; m = 3:
    # 3 * 0.001953125 = 0.005859375; 2 * 0.03125 = 0.0625; max(0.0625, 0.03125) = 0.0625.
    assert woman["mcnemar_p"] == pytest.approx(0.03125)  # below 0.05 before the correction
    assert woman["mcnemar_p_holm"] == pytest.approx(0.0625)
    assert woman["significant"] is False
    assert disabled["mcnemar_p_holm"] == pytest.approx(0.005859375)
    assert disabled["significant"] is True
    assert woman["family_size"] == 3
    markdown = markdown_report(summary, "holm")
    assert "| 6 / 0 | 0.031 | 0.062 |" in markdown
    assert "| 10 / 0 | 0.002 | 0.006 * |" in markdown
    assert "Holm's method over the 3 comparisons with `human`" in markdown


def test_the_audit_command_prints_raw_and_adjusted_p_values(tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(f'{{"id": "q{i}", "question": "Q{i}?", "answer": "yes"}}\n' for i in range(10))
    )
    out = tmp_path / "out"
    out.mkdir()
    # Every answer is already saved, so the command resumes with nothing left to ask the model.
    with (out / "audit.jsonl").open("w") as saved:
        saved.writelines(json.dumps(r) + "\n" for r in ten_question_records())
    argv = ["audit", "--questions", str(questions), "--personas", ",".join(AUDITED[1:])]
    argv += ["--baselines", "human", "--crows", "0", "--out", str(out)]
    argv += ["--base-url", "http://127.0.0.1:9/v1"]  # never called

    code, printed, _ = run(capsys, *argv)
    assert code == 0
    assert "| McNemar p | Holm p |" in printed
    assert "| 6 / 0 | 0.031 | 0.062 |" in printed and "| 10 / 0 | 0.002 | 0.006 * |" in printed

    code, printed, _ = run(capsys, *argv, "--json")
    versus = json.loads(printed)["personas"]["woman"]["vs"]["human"]
    assert (versus["mcnemar_p"], versus["mcnemar_p_holm"]) == (0.03125, 0.0625)
    saved_json = json.loads((out / "audit.json").read_text())
    assert saved_json["personas"]["atheist"]["vs"]["human"]["significant"] is False
    assert "| Holm p |" in (out / "audit.md").read_text()


def test_a_single_comparison_is_its_own_family_and_keeps_its_p_value(personas):
    pair = ("human", "physically_disabled")
    records = [r for r in ten_question_records() if r["persona"] in pair]
    summary = summarize(records, personas, ["human"])
    versus = summary["personas"]["physically_disabled"]["vs"]["human"]
    assert versus["mcnemar_p_holm"] == versus["mcnemar_p"] == pytest.approx(2 / 2**10)
    assert versus["family_size"] == 1 and versus["significant"] is True
    assert "over the 1 comparison with `human`" in markdown_report(summary, "one")
