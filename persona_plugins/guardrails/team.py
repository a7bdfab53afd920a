"""Team checks on plain transcripts: monopolization, drift from the task, discussion length.

Framework-neutral: a transcript is a list of ``(speaker, text)`` pairs; adapters translate their
framework's events into it (for AutoGen, ``persona_plugins.adapters.autogen.TeamGuardHandler``).
Lengths are counted in words, a stable stand-in for tokens that needs no tokenizer.

- ``monopolization`` (warning): one speaker's share of the words spoken by the team's members
  (the ``user`` excluded) exceeds ``max_share`` once at least ``min_turns`` turns were taken;
- ``drift`` (warning): the last ``drift_window`` turns share almost none of the task's requirement
  words (the content words of its sentences that say *must*, *should*, *need*, *include*, *at
  least*, ... or, without such sentences, of the whole task); the finding names the requirements
  the discussion has not touched yet;
- ``discussion_length`` (info): the discussion passed ``max_turns`` turns or ``max_words`` words.

:class:`TeamMonitor` keeps the transcript and repeats a finding of the same kind only every
``repeat_every`` turns, so that a long discussion is not annotated on every message. It is fed
either message by message by a hook that sees the whole team (:meth:`TeamMonitor.add`), or, on a
runtime with no such hook, from one member's side: before each of the member's replies, the
discussion the member received (:meth:`TeamMonitor.follow`), then the reply (``add``).

Example::

    from persona_plugins.guardrails.team import TeamMonitor

    monitor = TeamMonitor("Plan a 3-day trip to Rome for a family; budget under 2000 euros.")
    monitor.add("planner", "Day 1: the Colosseum, budget 300 euros for the family.")
    for finding in monitor.add("critic", "Football is great. Did you see the match?"):
        print(finding.detector, finding.message)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from persona_plugins.guardrails._text import bounded, content_words, excerpt, sentences, words
from persona_plugins.results import Finding

__all__ = [
    "DRIFT",
    "LENGTH",
    "MONOPOLIZATION",
    "TeamMonitor",
    "discussion_length",
    "drift",
    "monopolization",
    "requirements",
    "speaker_shares",
]

MONOPOLIZATION = "monopolization"
DRIFT = "drift"
LENGTH = "discussion_length"

Transcript = Sequence[tuple[str, str]]

_REQUIREMENT = re.compile(
    r"\b(?:must|should|shall|need(?:s)?\s+to|required?|requirements?|include|including|ensure|"
    r"make\s+sure|at\s+least|at\s+most|no\s+more\s+than|under|within|budget|deadline|limit|"
    r"only|exactly|avoid|without|do\s+not|don't)\b",
    re.I,
)
# Words that say how to talk, not what the task is about.
_GENERIC = {
    stem
    for stem in content_words(
        "please answer discuss discussion team agent agents task question reply respond write "
        "give provide make sure need must should include including ensure together each other "
        "everyone step steps final result approve approved terminate done good great thanks"
    )
}


def _count(text: str) -> int:
    return len(words(bounded(text)[0]))


def speaker_shares(transcript: Transcript, exclude: Iterable[str] = ("user",)) -> dict[str, float]:
    """Each speaker's share of the words spoken (speakers in ``exclude`` left out)."""
    skip = set(exclude)
    counts: Counter[str] = Counter()
    for speaker, text in transcript:
        if speaker not in skip:
            counts[speaker] += _count(text)
    total = sum(counts.values())
    return {s: n / total for s, n in counts.items()} if total else {}


def monopolization(
    transcript: Transcript,
    *,
    max_share: float = 0.6,
    min_turns: int = 4,
    exclude: Iterable[str] = ("user",),
) -> Finding | None:
    """A finding when one speaker's share of the words exceeds ``max_share``."""
    skip = set(exclude)
    turns = [t for t in transcript if t[0] not in skip]
    shares = speaker_shares(transcript, skip)
    if len(turns) < min_turns or len(shares) < 1:
        return None
    speaker, share = max(shares.items(), key=lambda item: item[1])
    if share <= max_share:
        return None
    return Finding(
        detector=MONOPOLIZATION,
        severity="warning",
        score=round(share, 3),
        message=f"{speaker} has spoken {share:.0%} of the discussion's words "
        f"(threshold {max_share:.0%}); other members should contribute",
        metadata={
            "speaker": speaker,
            "share": round(share, 3),
            "shares": shares,
            "turns": len(turns),
        },
    )


def requirements(task: str) -> list[str]:
    """The task's requirement sentences (those that say what must be done), or all of them."""
    parts = sentences(bounded(task)[0])
    stated = [p for p in parts if _REQUIREMENT.search(p)]
    return stated or parts


def _keywords(sentence: str) -> set[str]:
    return content_words(sentence) - _GENERIC


def drift(
    task: str,
    transcript: Transcript,
    *,
    window: int = 3,
    threshold: float = 0.15,
    exclude: Iterable[str] = ("user",),
) -> Finding | None:
    """A finding when the last ``window`` turns hardly touch the task's requirement words.

    A turn's relevance is the number of requirement words it uses, divided by the smaller of
    8 and the number of requirement words; drift is a mean relevance below ``threshold``.
    """
    reqs = requirements(task or "")
    keywords = set().union(*(_keywords(r) for r in reqs)) if reqs else set()
    skip = set(exclude)
    turns = [text for speaker, text in transcript if speaker not in skip]
    if len(keywords) < 2 or len(turns) < window:
        return None
    scale = min(8, len(keywords))
    recent = turns[-window:]
    relevance = [len(content_words(bounded(t)[0]) & keywords) / scale for t in recent]
    mean = sum(relevance) / len(relevance)
    if mean >= threshold:
        return None
    said = set().union(*(content_words(bounded(t)[0]) for t in turns))
    untouched = [r for r in reqs if not (_keywords(r) & said)]
    missing = "; ".join(excerpt(r, 90) for r in (untouched or reqs)[:3])
    return Finding(
        detector=DRIFT,
        severity="warning",
        score=round(1 - mean, 3),
        message=f"the last {window} messages have drifted from the task; still to address: "
        f"{missing}",
        metadata={
            "relevance": [round(r, 3) for r in relevance],
            "requirements": reqs,
            "untouched": untouched,
        },
    )


def discussion_length(
    transcript: Transcript,
    *,
    max_turns: int | None = 12,
    max_words: int | None = None,
    exclude: Iterable[str] = ("user",),
) -> Finding | None:
    """An ``info`` finding when the discussion has run past ``max_turns`` or ``max_words``."""
    skip = set(exclude)
    turns = [text for speaker, text in transcript if speaker not in skip]
    total = sum(_count(t) for t in turns)
    over_turns = max_turns is not None and len(turns) > max_turns
    over_words = max_words is not None and total > max_words
    if not (over_turns or over_words):
        return None
    limit = f"{max_turns} turns" if over_turns else f"{max_words} words"
    return Finding(
        detector=LENGTH,
        severity="info",
        score=float(len(turns)),
        message=f"the discussion has run past {limit} ({len(turns)} turns, {total} words); "
        "consider concluding",
        metadata={"turns": len(turns), "words": total},
    )


class TeamMonitor:
    """Keeps a team's transcript and runs the team checks after each message.

    Args:
        task: the task the team was given (needed for drift; may be set later with
            :meth:`set_task`).
        max_share, min_turns: monopolization threshold and the turns needed before judging it.
        drift_window, drift_threshold: drift is judged on this many recent turns.
        max_turns, max_words: discussion length limits (None: no limit).
        repeat_every: a finding of the same kind is repeated at most every this many turns.
        exclude: speakers that are not team members (the task's ``user``).
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        max_share: float = 0.6,
        min_turns: int = 4,
        drift_window: int = 3,
        drift_threshold: float = 0.15,
        max_turns: int | None = 12,
        max_words: int | None = None,
        repeat_every: int = 3,
        exclude: Iterable[str] = ("user",),
    ):
        self.task = task or ""
        self.max_share = max_share
        self.min_turns = min_turns
        self.drift_window = drift_window
        self.drift_threshold = drift_threshold
        self.max_turns = max_turns
        self.max_words = max_words
        self.repeat_every = max(1, repeat_every)
        self.exclude = set(exclude)
        self.transcript: list[tuple[str, str]] = []
        self.findings: list[Finding] = []
        self._last_reported: dict[str, int] = {}

    def set_task(self, task: str) -> None:
        if isinstance(task, str) and task.strip() and not self.task:
            self.task = task

    def follow(self, transcript: Transcript) -> None:
        """Take ``transcript`` as the discussion so far, without reporting on it.

        For a member that checks the team from its own side (a wrapper around its model client,
        on a runtime where no hook sees every message): before each of its replies it passes the
        discussion it received, and :meth:`add` then checks the whole with the reply. The first
        message of an excluded speaker (the ``user``) sets the task when none is set. A transcript
        shorter than the one kept starts a new discussion: findings may be reported afresh.
        """
        received = [(str(s), t if isinstance(t, str) else str(t)) for s, t in transcript]
        if len(received) < len(self.transcript):
            self._last_reported.clear()
        self.transcript = received
        for speaker, text in received:
            if speaker in self.exclude:
                self.set_task(text)
                break

    def check(self) -> list[Finding]:
        """Every team finding for the transcript as it stands (no repeat suppression)."""
        found = [
            monopolization(
                self.transcript,
                max_share=self.max_share,
                min_turns=self.min_turns,
                exclude=self.exclude,
            ),
            drift(
                self.task,
                self.transcript,
                window=self.drift_window,
                threshold=self.drift_threshold,
                exclude=self.exclude,
            ),
            discussion_length(
                self.transcript,
                max_turns=self.max_turns,
                max_words=self.max_words,
                exclude=self.exclude,
            ),
        ]
        return [f for f in found if f is not None]

    def add(self, speaker: str, text: str) -> list[Finding]:
        """Record one message; return the team findings it brings (first, or repeated)."""
        self.transcript.append((str(speaker), text if isinstance(text, str) else str(text)))
        turn = len(self.transcript)
        new: list[Finding] = []
        for finding in self.check():
            last = self._last_reported.get(finding.detector)
            if last is not None and turn - last < self.repeat_every:
                continue
            if finding.detector == LENGTH and last is not None:
                continue  # the length warning is given once
            self._last_reported[finding.detector] = turn
            stamped = finding.model_copy(
                update={"metadata": {**finding.metadata, "turn": turn, "after": speaker}}
            )
            new.append(stamped)
        self.findings.extend(new)
        return new
