"""Refinement as an AutoGen team: a persona writer and reviewer agents inside a SocietyOfMindAgent.

The same reviewer roles that ``refine="sequential"`` runs inside the pipeline
(persona_plugins.refinement) are here ordinary AutoGen agents: the writer drafts, each reviewer
improves one aspect in turn, and the SocietyOfMindAgent hands the team's work back as one reply.
With PersonaPipeline(refine=...) you get the same refinement without building a team.

Run: python examples/autogen_refinement_team.py
Needs: pip install "persona-plugins[autogen,local]"
"""

import asyncio

from autogen_agentchat.agents import AssistantAgent, SocietyOfMindAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client
from persona_plugins.refinement import ASPECTS, REVIEWER_SYSTEM_PROMPT


async def main() -> None:
    model = embedded_model_client(generation={"max_tokens": 120})
    writer = AssistantAgent(
        "writer", model_client=PersonaChatCompletionClient(model, persona="historian")
    )
    reviewers = [
        AssistantAgent(
            f"{aspect}_reviewer",
            model_client=model,
            system_message=REVIEWER_SYSTEM_PROMPT.format(aspect=ASPECTS[aspect]),
        )
        for aspect in ("factuality", "coherence")
    ]
    inner_team = RoundRobinGroupChat(
        [writer, *reviewers], termination_condition=MaxMessageTermination(4)
    )
    society = SocietyOfMindAgent("refined_historian", team=inner_team, model_client=model)
    result = await society.run(task="Why did people build castles?")
    for message in result.messages:
        print(f"[{message.source}] {str(message.content)[:300]}\n")


if __name__ == "__main__":
    asyncio.run(main())
