"""``TeamGuard.review_reply``: the team checks from one member's side, over what it received."""

from __future__ import annotations

import logging

import pytest

from persona_plugins import ConfigError, Message
from persona_plugins.adapter_kit import TEAM_NOTE_TEMPLATE, TeamGuard
from persona_plugins.guardrails.team import speaker_shares

TASK = "Plan a picnic for six people. The budget must stay under 50 euros."
LONG = "The picnic for six needs bread, cheese and fruit; the budget stays near 30 euros. " * 3


def note(message: str) -> str:
    return TEAM_NOTE_TEMPLATE.format(message=message)


async def test_the_received_conversation_becomes_the_transcript_in_the_members_own_words():
    guard = TeamGuard(guard="enforce", detectors=[], max_turns=None, min_turns=99)
    received = [
        Message.system("You are the chef."),
        Message.user(TASK, name="user"),
        Message.assistant(LONG + note("chef has spoken 90% of the words")),  # its own, unnamed
        Message.user("Sounds good." + note("the discussion has run long"), name="tutor"),
        Message(role="tool", content="42"),
    ]

    text = await guard.review_reply("chef", "Then lemonade.", received)

    assert text == "Then lemonade."
    assert guard.monitor.task == TASK
    assert guard.monitor.transcript == [
        ("user", TASK),
        ("chef", LONG),
        ("tutor", "Sounds good."),
        ("chef", "Then lemonade."),
    ]


async def test_a_reply_that_completes_a_monopoly_gets_a_note_and_repeats_are_spaced():
    guard = TeamGuard(detectors=[], min_turns=3, max_share=0.6, max_turns=None, repeat_every=3)
    talk = [Message.user(TASK)]
    replies = []
    for turn in range(6):
        speaker, text = ("chef", LONG) if turn % 2 == 0 else ("tutor", "Agreed.")
        sent = await guard.review_reply(speaker, text, talk)
        replies.append(sent)
        talk.append(Message.user(sent, name=speaker))

    noted = [i for i, r in enumerate(replies) if "chef has spoken" in r]
    assert noted == [2, 5]  # from the third member turn on, then three turns later
    assert replies[2].startswith(LONG) and replies[2] != LONG
    assert [f.metadata["turn"] for f in guard.findings] == [4, 7]
    assert guard.rewrites == 2
    # The notes were taken off again: the shares count what the members wrote.
    written = [("chef", LONG), ("tutor", "Agreed.")] * 3
    assert guard.findings[1].metadata["shares"] == speaker_shares(written)
    assert all("persona-plugins" not in text for _, text in guard.monitor.transcript)


async def test_monitor_mode_records_without_rewriting_and_off_checks_nothing():
    talk = [Message.user(TASK), Message.user(LONG, name="chef"), Message.user("Yes.", name="b")]
    monitor = TeamGuard(guard="monitor", detectors=[], min_turns=3)
    assert await monitor.review_reply("chef", LONG, talk) == LONG
    assert [f.detector for f in monitor.findings] == ["monopolization"]
    off = TeamGuard(guard="off", detectors=[], min_turns=3)
    assert await off.review_reply("chef", LONG, talk) == LONG
    assert off.findings == []


def test_only_enforce_may_rewrite_a_reply_so_only_it_makes_a_stream_wait():
    modes = {
        mode: TeamGuard(guard=mode, detectors=[]).may_rewrite
        for mode in ("enforce", "monitor", "off")
    }
    assert modes == {"enforce": True, "monitor": False, "off": False}


class Broken(RuntimeError):
    pass


def break_monitor(guard: TeamGuard) -> None:
    def add(speaker, text):
        raise Broken("the monitor failed")

    guard.monitor.add = add  # the guard's own machinery fails, not a detector


async def test_a_failing_team_guard_lets_the_message_through_by_default(caplog):
    guard = TeamGuard(guard="enforce", detectors=[])
    break_monitor(guard)
    with caplog.at_level(logging.WARNING, logger="persona_plugins.guardrails"):
        text = await guard.review_reply("chef", "Then lemonade.", [Message.user(TASK)])
    assert text == "Then lemonade."
    assert any("could not check chef's message" in r.getMessage() for r in caplog.records)


def test_a_misspelt_detector_or_option_in_a_team_guard_is_a_config_error_at_once():
    for detectors in (["toxcity"], ["abstention:jduge"]):
        with pytest.raises(ConfigError):
            TeamGuard(guard="enforce", detectors=detectors)


async def test_a_failing_team_guard_withholds_the_message_when_errors_close():
    guard = TeamGuard(guard="enforce", guard_errors="closed", detectors=[])
    break_monitor(guard)
    text = await guard.review("chef", "Then lemonade.")
    assert "withheld this message from chef" in text
    assert "could not check it" in text and "lemonade" not in text
