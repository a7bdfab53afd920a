"""Several collaborating personas in one call: the Solo Performance Prompting (SPP) candidate.

After "Unleashing Cognitive Synergy in Large Language Models" (Wang et al.): the model names the
participants whose knowledge the task needs, lets them work through it together, critiquing each
other, and ends with a final answer. Active when ``persona_mode="multi"``; with
``ensemble="jekyll_hyde"`` it competes with the neutral answer before the judge.

The prompt and its two demonstrations below are this project's own. The candidate's text is the part
after the final-answer marker; the whole transcript and the participants are kept in its metadata.
A missing marker is recorded in the candidate's ``metadata["marker_missing"]`` and in
``TurnResult.errors``, and the whole reply is used.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from typing import Any

from persona_plugins.candidates import complete_candidate
from persona_plugins.config import PipelineConfig
from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import ChatModel, Message
from persona_plugins.results import Candidate

__all__ = ["FINAL_ANSWER_MARKER", "SPP_SYSTEM_PROMPT", "parse_spp", "spp_messages"]

FINAL_ANSWER_MARKER = "Final answer:"

SPP_SYSTEM_PROMPT = f"""\
Solve each task as a small team that lives in your head. First name the participants whose \
knowledge the task needs, always including yourself as "AI Assistant (you)". Then let them work \
through the task together: each one speaks in turn, adds what they know, and corrects mistakes in \
what the others said. When they agree, write the answer on its own line, starting with \
"{FINAL_ANSWER_MARKER}".

Example 1
Task: A farmer has 17 sheep. All but 9 run away. How many sheep are left?
Participants: AI Assistant (you); Careful Reader; Mathematician
Careful Reader: "All but 9 run away" means that 9 sheep stayed.
Mathematician: Then nothing needs subtracting from 17: the farmer keeps 9 sheep.
AI Assistant (you): Agreed. The trap is reading it as 17 - 9 = 8.
{FINAL_ANSWER_MARKER} 9

Example 2
Task: Write one sentence about the Moon that mentions the year of the first crewed landing.
Participants: AI Assistant (you); Historian; Poet
Historian: The first crewed landing was Apollo 11, in July 1969.
Poet: "Silent and silver, the Moon has carried human footprints since 1969."
AI Assistant (you): The year is right and the sentence reads well.
{FINAL_ANSWER_MARKER} Silent and silver, the Moon has carried human footprints since 1969.
"""

_PARTICIPANTS = re.compile(r"^\s*participants\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_FINAL = re.compile(r"final\s+answer\s*:", re.IGNORECASE)


def spp_messages(messages: Sequence[Message]) -> list[Message]:
    """The conversation with the SPP instructions as a leading system message and the last user
    message presented as the task."""
    out = [Message.system(SPP_SYSTEM_PROMPT)]
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    for index, message in enumerate(messages):
        if index == last_user:
            out.append(Message(role="user", content=f"Task: {message.content}", name=message.name))
        else:
            out.append(message)
    return out


def parse_spp(text: str) -> dict[str, Any]:
    """Split an SPP reply into ``participants``, ``final_answer`` and ``marker_missing``."""
    participants_match = _PARTICIPANTS.search(text)
    participants = (
        [p.strip() for p in participants_match.group(1).split(";") if p.strip()]
        if participants_match
        else []
    )
    finals = list(_FINAL.finditer(text))
    if finals:
        answer = text[finals[-1].end() :].strip()
        return {
            "participants": participants,
            "final_answer": answer,
            "marker_missing": not answer,
        }
    return {"participants": participants, "final_answer": text.strip(), "marker_missing": True}


async def _spp_candidate(
    messages: Sequence[Message], model: ChatModel, settings: dict[str, Any]
) -> Candidate:
    candidate = await complete_candidate("spp", model, spp_messages(messages), settings)
    if candidate.error:
        return candidate
    parsed = parse_spp(candidate.text)
    candidate.metadata.update(
        transcript=candidate.text,
        participants=parsed["participants"],
        marker_missing=parsed["marker_missing"],
    )
    if parsed["marker_missing"]:
        candidate.notes.append(f"spp: no '{FINAL_ANSWER_MARKER}' line; using the whole reply")
    candidate.text = parsed["final_answer"] or candidate.text
    return candidate


@hookimpl
def generate_candidates(
    messages: Sequence[Message],
    config: PipelineConfig,
    model: ChatModel,
    settings: dict[str, Any],
) -> Awaitable[Candidate] | None:
    if config.persona_mode != "multi":
        return None
    return _spp_candidate(messages, model, settings)
