"""The persona contradiction detector: APC-style scoring, heuristic and model-as-judge."""

from __future__ import annotations

import pytest

from persona_plugins import Message, Persona, PipelineConfig
from persona_plugins.guardrails.contradiction import (
    APC_JUDGE_PROMPT,
    PersonaContradictionDetector,
    parse_judgement,
    score_statement,
)
from tests.core.doubles import ScriptedModel

DETECTOR = PersonaContradictionDetector()
TEACHER = Persona(
    name="t",
    description="a teacher",
    statements=[
        "I teach arithmetic.",
        "I do not eat meat.",
        "I have taught for twenty years.",
        "I live in Lyon.",
    ],
)


@pytest.fixture(scope="module")
def alice(shared_data) -> Persona:
    lines = (shared_data / "apc" / "wiki_Alice.txt").read_text(encoding="utf-8").splitlines()
    return Persona(name="alice", description="Alice Carter", statements=[s for s in lines if s])


@pytest.mark.parametrize(
    "question,reply,reason",
    [
        ("What do you eat?", "I eat meat every day.", "negation"),
        ("How long have you taught?", "I have taught for five years.", "number"),
        ("Where do you live?", "I live in Paris, near the river.", "different home"),
    ],
)
def test_contradictions_of_the_teachers_statements_are_found(question, reply, reason):
    [finding] = DETECTOR.detect(reply, messages=[Message.user(question)], persona=TEACHER)
    assert finding.detector == "persona_contradiction"
    assert finding.metadata["reason"] == reason
    assert finding.score is not None and finding.score >= DETECTOR.threshold
    assert 0 <= finding.metadata["apc_score"] <= 1


@pytest.mark.parametrize(
    "reply",
    [
        "I teach arithmetic to children.",
        "I have taught for 20 years.",
        "I live in Lyon.",
        "The capital of France is Paris.",
        "I am a big fan of jazz.",
    ],
)
def test_consistent_or_unrelated_replies_are_clean(reply):
    assert (
        DETECTOR.detect(reply, messages=[Message.user("Tell me about you")], persona=TEACHER) == []
    )


def test_alices_profile_from_the_apc_data(alice):
    def reasons(question, reply):
        found = DETECTOR.detect(reply, messages=[Message.user(question)], persona=alice)
        return [f.metadata["reason"] for f in found]

    assert reasons("How old are you?", "I am 40 years old.") == ["number"]
    assert reasons("What is your name?", "My name is Sarah.") == ["different name"]
    assert reasons("What do you do?", "I work as an accountant at a bank.") == [
        "different occupation"
    ]
    assert reasons("How old are you?", "I am 26 years old.") == []
    assert reasons("What do you do?", "I am a professional guitarist.") == []


def test_relevance_is_at_least_one_half_and_higher_when_the_question_is_on_topic():
    on_topic = score_statement("I live in Lyon.", "Where do you live?", "I live in Paris.")
    off_topic = score_statement("I live in Lyon.", "What is 2 + 2?", "4")
    assert on_topic.relevance > off_topic.relevance >= 0.5
    assert off_topic.contradiction == 0


def test_a_persona_without_statements_gives_nothing():
    config = PipelineConfig(guard="monitor")
    bare = Persona(name="b", description="a pirate")
    assert DETECTOR.check_response([], "I am 40.", bare, config, None) is None
    assert DETECTOR.check_response([], "I am 40.", None, config, None) is None


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("RELEVANT: yes\nRELATION: contradicted", (True, "contradicted")),
        ("relevant: no\nrelation: entailed", (False, "entailed")),
        ("RELEVANT: yes\nRELATION: neither", (True, "neutral")),
        ("I think it is fine.", None),
    ],
)
def test_the_judges_reply_is_parsed(reply, expected):
    assert parse_judgement(reply) == expected


async def test_with_the_model_as_judge_each_relevant_statement_is_judged():
    config = PipelineConfig(guard="monitor", detectors=["persona_contradiction:judge"])
    model = ScriptedModel(default="RELEVANT: yes\nRELATION: neutral")
    model.replies = ["RELEVANT: yes\nRELATION: contradicted"]
    found = await DETECTOR.check_response(
        [Message.user("Do you eat meat?")], "Sure, I love steak.", TEACHER, config, model
    )
    assert len(model.calls) == len(TEACHER.statements)  # fewer than max_judged
    system, user = model.calls[0]
    assert system.role == "system" and user.role == "user"
    assert "<fact>" in system.content and APC_JUDGE_PROMPT.split("\n")[0] in system.content
    # the persona's statements stay in system text; the user message is the conversation's own
    assert all(statement not in user.content for statement in TEACHER.statements)
    assert "Do you eat meat?" in user.content and "Sure, I love steak." in user.content
    [finding] = found
    assert finding.metadata["source"] == "judge"
    assert finding.score == 1.0


async def test_an_unreadable_or_failing_judge_falls_back_to_the_heuristic():
    config = PipelineConfig(guard="monitor", detectors=["persona_contradiction:judge"])
    for model in (ScriptedModel(default="no idea"), ScriptedModel(default=RuntimeError("down"))):
        found = await DETECTOR.check_response(
            [Message.user("What do you eat?")], "I eat meat every day.", TEACHER, config, model
        )
        assert [f.metadata["source"] for f in found] == ["heuristic"]
