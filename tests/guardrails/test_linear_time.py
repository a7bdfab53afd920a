"""Hostile text cannot stall the detectors (issue 12, finding 1): every built-in detector takes
time in proportion to the length of what it reads, reads at most ``MAX_CHARS`` characters, and
long texts are checked off the event loop.

Time is compared, never asserted: each detector runs on an adversarial text and on the same text
ten times longer, and the second must cost less than 40 times the first (linear work costs about
10 times; the quadratic patterns this replaces cost 100 times and more).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona_plugins import Finding, Message, Persona, PersonaPipeline, hookimpl
from persona_plugins.guardrails import abstention, contradiction, stereotype, toxicity
from persona_plugins.guardrails._text import sentence_spans
from persona_plugins.guardrails.normalise import MAX_CHARS, _normalise, normalise
from tests.core.doubles import ScriptedModel, registered

PERSONA = Persona(
    name="alice",
    description="a woman from Paris",
    statements=["I am 26 years old.", "I live in Paris.", "I love my cat."],
    demographics={"gender": "woman"},
)


def _user(text: str) -> list[Message]:
    return [Message.user(text)]


#: Every built-in detector, reading the text as the response and (where it reads one) as the
#: user's message too; plus the shared text handling.
DETECTORS = {
    "abstention": lambda t: abstention.DEFAULT.detect(t, messages=_user(t), persona=PERSONA),
    "stereotype": lambda t: stereotype.DEFAULT.detect(t, messages=_user(t), persona=PERSONA),
    "toxicity": lambda t: toxicity.DEFAULT.detect(t),
    "persona_contradiction": lambda t: contradiction.DEFAULT.detect(
        t, messages=_user(t), persona=PERSONA
    ),
    "normalise": lambda t: normalise(t, casefold=False),
    "sentence_spans": sentence_spans,
    # the parsers of model replies the detectors read
    "persona_contradiction judge reply": lambda t: contradiction.parse_judgement("RELEVANT" + t),
    "stereotype agreement": stereotype.agreement,
}

#: Adversarial units, repeated to length: runs of one character, the patterns' own keywords,
#: repeated words, disguise characters, and prose without punctuation.
UNITS = {
    "letter": "a",
    "spaces": " ",
    "line breaks": "\n",
    "full stops": ".",
    "apostrophes": "'",
    "hyphens": "-",
    "asterisks": "*",
    "underscores": "_",
    "zero-width spaces": "\u200b",
    "accented letters": "é",
    "full-width letters": "Ａ",
    "women are": "women are ",
    "some women": "some women ",
    "as a woman": "as a woman, ",
    "i can't": "i can't ",
    "i am not able": "i am not able ",
    "not": "not ",
    "like me": "like me ",
    "leave it to": "leave it to ",
    "the answer is": "the answer is ",
    "however": "however, ",
    "you are": "you are ",
    "i will kill": "i will kill ",
    "i live in": "i live in ",
    "i am a": "I am a ",
    "markdown": "**un**able ",
    "no punctuation": "the quick brown fox jumps over the lazy dog and keeps running ",
    "judge padding": " \n",
}


def _cost(check, text: str) -> float:
    """CPU seconds of one check of ``text``, best of three, each run normalising the text afresh
    (the normalisation cache would otherwise make the second and third runs free)."""
    best = float("inf")
    for _ in range(3):
        _normalise.cache_clear()
        started = time.process_time()
        check(text)
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize("unit", list(UNITS.values()), ids=list(UNITS))
@pytest.mark.parametrize("name", list(DETECTORS))
def test_every_detector_costs_time_in_proportion_to_the_text(name, unit):
    check = DETECTORS[name]
    small = unit * max(1, 4_000 // len(unit))
    large = unit * max(1, 40_000 // len(unit))
    check(small)  # compile the patterns first
    ratio = _cost(check, large) / max(_cost(check, small), 1e-5)
    assert ratio < 40, f"{name} on {unit!r}: 10x the text cost {ratio:.0f}x the time"


@pytest.mark.parametrize("name", ["abstention", "stereotype", "toxicity", "persona_contradiction"])
def test_a_megabyte_without_punctuation_is_read_only_up_to_the_cap(name):
    words = "women are lazy and i cannot answer this as a woman you idiot i am 40 "
    megabyte = words * (1_000_000 // len(words))
    capped = megabyte[:MAX_CHARS]
    # beyond the cap nothing is read: the cost of a megabyte is the cost of the capped text
    ratio = _cost(DETECTORS[name], megabyte) / max(_cost(DETECTORS[name], capped), 1e-5)
    assert ratio < 3, f"{name} read past the cap ({ratio:.1f}x the capped cost)"
    assert normalise(megabyte).truncated and len(normalise(megabyte).original) == MAX_CHARS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "as a woman, ",
                "i can't ",
                "answer ",
                "not ",
                "women are ",
                "lazy ",
                "\u200b",
                "\u00ad",
                "**",
                "_",
                "`",
                "а",
                "Ａ",
                ". ",
                "\n",
                "\n\n",
                "however, ",
                "like me ",
                "i am ",
                "26 ",
                "paris ",
                "you idiot ",
                "'",
                "- ",
                "* ",
                "é",
                "\u202e",
            ]
        ),
        max_size=300,
    )
)
def test_any_mix_of_keywords_and_disguises_gives_findings_that_point_into_the_text(pieces):
    text = "".join(pieces)
    for name in ("abstention", "stereotype", "toxicity", "persona_contradiction"):
        findings = DETECTORS[name](text)
        assert all(isinstance(f, Finding) for f in findings)
        for finding in findings:
            start, end = finding.metadata.get("start"), finding.metadata.get("end")
            if start is not None:
                assert 0 <= start <= end <= len(text)


class WhereItRan:
    """A thread-safe third-party detector that notes the thread it ran in."""

    name = "where_it_ran"
    thread_safe = True

    def __init__(self) -> None:
        self.threads: list[int] = []

    def check(self, messages, response, persona, config, model):
        self.threads.append(threading.get_ident())
        return []


class OnTheLoop(WhereItRan):
    """The same, without declaring itself thread-safe: it always runs on the loop."""

    name = "on_the_loop"
    thread_safe = False


class Registers:
    def __init__(self, *detectors: object):
        self.detectors = detectors

    @hookimpl
    def register_detectors(self, register):
        for detector in self.detectors:
            register(detector)


async def test_long_texts_are_checked_off_the_event_loop_by_thread_safe_detectors(
    plugin_manager,
):
    from persona_plugins.guard import OFF_LOOP_CHARS

    threaded, looped = WhereItRan(), OnTheLoop()
    with registered(plugin_manager, Registers(threaded, looped)):
        pipeline = PersonaPipeline(
            ScriptedModel("unused"),
            plugin_manager=plugin_manager,
            guard="monitor",
            detectors=["abstention", "where_it_ran", "on_the_loop"],
        )
        loop_thread = threading.get_ident()
        await pipeline.check("A short answer.", "Question?")
        long_text = "As a woman, I cannot answer this. " * (OFF_LOOP_CHARS // 30 + 1)
        findings = await pipeline.check(long_text, "Question?")
    assert threaded.threads[0] == loop_thread  # short: on the loop (a thread costs more)
    assert threaded.threads[1] != loop_thread  # long: in a worker thread
    assert looped.threads == [loop_thread, loop_thread]  # not thread-safe: always on the loop
    assert [f.detector for f in findings] == ["abstention"]  # found off the loop all the same


async def test_the_loop_keeps_turning_while_a_long_text_is_checked(plugin_manager):
    pipeline = PersonaPipeline(
        ScriptedModel("unused"), plugin_manager=plugin_manager, guard="monitor"
    )
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await pipeline.check("women are " * 9_000, "Are women lazy?")
    ticking.cancel()
    assert ticks > before + 1  # the loop ran other tasks while the detectors worked


@pytest.mark.parametrize("name", ["abstention", "stereotype", "persona_contradiction"])
def test_the_users_message_is_read_only_up_to_its_cap(name):
    from persona_plugins.guardrails.normalise import MAX_USER_CHARS

    detector = {
        "abstention": abstention.DEFAULT,
        "stereotype": stereotype.DEFAULT,
        "persona_contradiction": contradiction.DEFAULT,
    }[name]
    huge = "women are lazy, i live in london and i am 40. " * (10_000_000 // 46)
    capped = huge[:MAX_USER_CHARS]

    def check(user: str) -> None:
        detector.detect("Yes, that's true. I live in Paris.", messages=_user(user), persona=PERSONA)

    check(capped)
    ratio = _cost(check, huge) / max(_cost(check, capped), 1e-5)
    assert ratio < 3, f"{name} read past the cap of the user's message ({ratio:.1f}x)"


class Failing(WhereItRan):
    """A thread-safe detector with a bug."""

    name = "failing"

    def check(self, messages, response, persona, config, model):
        raise RuntimeError("a bug in a worker thread")


async def test_a_detector_failing_off_the_loop_is_isolated_like_one_on_it(plugin_manager):
    from persona_plugins.guard import OFF_LOOP_CHARS

    long_refusal = "As a woman, I cannot answer this. " * (OFF_LOOP_CHARS // 30 + 1)
    with registered(plugin_manager, Registers(Failing())):
        pipeline = PersonaPipeline(
            ScriptedModel("unused"),
            plugin_manager=plugin_manager,
            guard="monitor",
            detectors=["failing", "abstention"],
        )
        outcome = await pipeline.guard(long_refusal, "Question?")
    assert outcome.failed_detectors == ["failing"]
    assert [f.detector for f in outcome.findings] == ["abstention"]
