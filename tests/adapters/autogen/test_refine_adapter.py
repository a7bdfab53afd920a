"""Refinement through the AutoGen client: the reviewers' calls go to the inner client."""

from __future__ import annotations

from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.replay import ReplayChatCompletionClient

from persona_plugins.adapters.autogen import PersonaChatCompletionClient


async def test_an_agent_gets_the_refined_reply_and_every_review_is_counted():
    inner = ReplayChatCompletionClient(
        [
            "Castles were built for parties.",  # the draft
            "VERDICT: REVISE\nFEEDBACK: Wrong purpose.\n"
            "REVISION: Castles were built to defend land and control territory.",  # factuality
            "VERDICT: OK",  # persona
            "VERDICT: OK",  # coherence
        ]
    )
    inner.set_cached_bool_value(False)
    client = PersonaChatCompletionClient(inner, persona="historian", refine="sequential")
    agent = AssistantAgent("historian", model_client=client)

    result = await agent.run(task="Why did people build castles?")

    assert result.messages[-1].content == (
        "Castles were built to defend land and control territory."
    )
    turn = client.last_result
    assert [r.refiner for r in turn.reviews] == ["factuality", "persona", "coherence"]
    assert turn.reviews[0].needs_change and turn.reviews[0].feedback == "Wrong purpose."
    assert client.model_calls == turn.model_calls == 4
