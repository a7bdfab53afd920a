"""Team checks on plain (speaker, text) transcripts: monopolization, drift, discussion length."""

from __future__ import annotations

from itertools import pairwise

from persona_plugins.guardrails.team import (
    TeamMonitor,
    discussion_length,
    drift,
    monopolization,
    requirements,
    speaker_shares,
)

TASK = (
    "Plan a three-day trip to Rome for a family with two kids. The budget must stay under "
    "2000 euros, and the plan should include one museum each day."
)


def test_shares_count_words_per_speaker_without_the_user():
    transcript = [("user", "hello there"), ("a", "one two three"), ("b", "four")]
    assert speaker_shares(transcript) == {"a": 0.75, "b": 0.25}


def test_one_speaker_taking_most_of_the_words_is_monopolization():
    transcript = [("a", "word " * 90), ("b", "ok"), ("a", "word " * 90), ("b", "fine")]
    finding = monopolization(transcript, max_share=0.6, min_turns=4)
    assert finding is not None
    assert finding.detector == "monopolization"
    assert finding.metadata["speaker"] == "a"
    assert finding.score and finding.score > 0.9


def test_a_balanced_or_short_discussion_is_not_monopolized():
    balanced = [("a", "one two three"), ("b", "four five six")] * 2
    assert monopolization(balanced) is None
    assert monopolization([("a", "word " * 100)], min_turns=4) is None


def test_requirements_are_the_sentences_that_state_them():
    assert requirements(TASK) == [
        "The budget must stay under 2000 euros, and the plan should include one museum each day."
    ]
    assert requirements("Write a haiku about autumn.") == ["Write a haiku about autumn."]


def test_recent_turns_that_ignore_the_requirements_are_drift():
    on_task = [("planner", "Day one: the Vatican Museums, 150 euros for the family.")]
    off_task = [
        ("critic", "Football is the best sport in the world."),
        ("planner", "I prefer tennis, honestly."),
        ("critic", "Tennis players are very fit."),
    ]
    assert drift(TASK, on_task + off_task[:1]) is None  # fewer turns than the window
    finding = drift(TASK, on_task + off_task)
    assert finding is not None and finding.detector == "drift"
    assert "budget" in finding.message
    assert drift(TASK, on_task * 3) is None


def test_drift_needs_a_task_with_content():
    assert drift("", [("a", "x")] * 5) is None
    assert drift("Hi.", [("a", "football")] * 5) is None


def test_a_discussion_past_its_length_gets_an_info_finding():
    transcript = [("a", "one two"), ("b", "three")] * 3
    assert discussion_length(transcript, max_turns=6) is None
    finding = discussion_length(transcript, max_turns=5)
    assert finding is not None and finding.severity == "info"
    assert discussion_length(transcript, max_turns=None, max_words=8) is not None


def test_the_monitor_repeats_a_finding_only_every_few_turns_and_the_length_once():
    monitor = TeamMonitor(TASK, max_share=0.6, min_turns=2, max_turns=3, repeat_every=3)
    emitted = []
    for turn in range(8):
        speaker = "a" if turn % 2 == 0 else "b"
        text = "word " * 50 if speaker == "a" else "ok"
        emitted.append([f.detector for f in monitor.add(speaker, text)])
    flat = [d for turn in emitted for d in turn]
    assert flat.count("discussion_length") == 1
    monopoly_turns = [i for i, turn in enumerate(emitted) if "monopolization" in turn]
    assert monopoly_turns and all(b - a >= 3 for a, b in pairwise(monopoly_turns))
    assert monitor.findings and all("turn" in f.metadata for f in monitor.findings)


def test_the_task_can_come_later_and_is_kept_once_set():
    monitor = TeamMonitor()
    monitor.set_task("Plan a picnic.")
    monitor.set_task("Something else.")
    assert monitor.task == "Plan a picnic."


def test_bad_transcript_entries_do_not_crash():
    monitor = TeamMonitor(TASK)
    for text in ("", "x" * 300_000, "Bonjour à tous, parlons du budget.", None, 42):
        monitor.add("a", text)  # type: ignore[arg-type]
    assert isinstance(monitor.check(), list)


def test_following_a_received_transcript_reports_nothing_until_the_next_message():
    monitor = TeamMonitor(max_turns=2, min_turns=2, drift_threshold=0.0)
    monitor.follow([("user", "Plan a picnic."), ("a", "word " * 40), ("b", "ok"), ("a", "more")])
    assert monitor.task == "Plan a picnic."
    assert monitor.findings == []
    new = monitor.add("b", "fine")
    assert {f.detector for f in new} == {"monopolization", "discussion_length"}
    assert all(f.metadata["turn"] == 5 for f in new)


def test_a_shorter_received_transcript_is_a_new_discussion_with_findings_afresh():
    monitor = TeamMonitor(min_turns=2, max_turns=None, drift_threshold=0.0, repeat_every=5)
    talk = [("user", "Plan a picnic."), ("a", "word " * 40), ("b", "ok")]
    monitor.follow(talk)
    assert [f.detector for f in monitor.add("a", "word " * 40)] == ["monopolization"]
    monitor.follow([*talk, ("a", "word " * 40), ("b", "ok")])
    assert monitor.add("a", "word " * 40) == []  # two turns later: not repeated yet
    monitor.follow(talk)
    assert [f.detector for f in monitor.add("a", "word " * 40)] == ["monopolization"]
