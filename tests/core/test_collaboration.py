"""Solo Performance Prompting: one call, participants, the final-answer marker."""

from __future__ import annotations

from persona_plugins import Completion, Message, PersonaPipeline
from persona_plugins.collaboration import (
    FINAL_ANSWER_MARKER,
    SPP_SYSTEM_PROMPT,
    parse_spp,
    spp_messages,
)

TRANSCRIPT = """Participants: AI Assistant (you); Geographer; Historian
Geographer: Canberra was chosen as a compromise between Sydney and Melbourne.
Historian: It became the capital in 1913.
AI Assistant (you): Agreed.
Final answer: Canberra"""


class SppModel:
    def __init__(self, reply: str):
        self.reply = reply
        self.seen: list[list[Message]] = []

    async def complete(self, messages, **settings):
        self.seen.append(list(messages))
        return Completion(text=self.reply)


def test_parse_spp_reads_participants_and_the_final_answer():
    parsed = parse_spp(TRANSCRIPT)
    assert parsed == {
        "participants": ["AI Assistant (you)", "Geographer", "Historian"],
        "final_answer": "Canberra",
        "marker_missing": False,
    }


def test_parse_spp_uses_the_last_marker_and_records_a_missing_one():
    assert parse_spp("Final answer: 8\nWait, no.\nFinal answer: 9")["final_answer"] == "9"
    missing = parse_spp("Participants: AI Assistant (you)\nThe answer is 9.")
    assert missing["marker_missing"] and missing["final_answer"].endswith("The answer is 9.")


def test_spp_prompt_has_demonstrations_and_the_marker():
    assert SPP_SYSTEM_PROMPT.count(FINAL_ANSWER_MARKER) >= 3  # instruction + two demonstrations
    messages = spp_messages([Message.system("Be brief."), Message.user("What is the capital?")])
    assert messages[0].content == SPP_SYSTEM_PROMPT
    assert messages[1].content == "Be brief."
    assert messages[-1].content == "Task: What is the capital?"


async def test_multi_mode_answers_with_one_spp_call(plugin_manager):
    model = SppModel(TRANSCRIPT)
    result = await PersonaPipeline(model, plugin_manager=plugin_manager, persona_mode="multi").run(
        "What is the capital of Australia?"
    )
    assert result.model_calls == 1
    assert result.text == "Canberra" and result.chosen == "spp"
    spp = result.candidates[0]
    assert spp.metadata["participants"][1:] == ["Geographer", "Historian"]
    assert spp.metadata["transcript"] == TRANSCRIPT
    assert result.persona is None and result.persona_source == "multi"


async def test_a_missing_marker_is_recorded_not_hidden(plugin_manager):
    model = SppModel("Participants: AI Assistant (you); Chef\nChef: Boil it for 7 minutes.")
    result = await PersonaPipeline(model, plugin_manager=plugin_manager, persona_mode="multi").run(
        "How long should I boil an egg?"
    )
    assert result.candidates[0].metadata["marker_missing"] is True
    assert any("no 'Final answer:' line" in e.error for e in result.errors)
    assert "7 minutes" in result.text


async def test_spp_against_neutral_with_jekyll_hyde(plugin_manager):
    model = SppModel(TRANSCRIPT)
    result = await PersonaPipeline(
        model, plugin_manager=plugin_manager, persona_mode="multi", ensemble="jekyll_hyde"
    ).run("What is the capital of Australia?")
    assert sorted(c.name for c in result.candidates) == ["neutral", "spp"]
