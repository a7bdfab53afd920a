"""Refinement as an AutoGen team: a persona writer and reviewer agents inside a SocietyOfMindAgent.

The same reviewer roles that ``refine="sequential"`` runs inside the pipeline
(persona_plugins.refinement) are here ordinary AutoGen agents: the writer drafts, each reviewer
improves one aspect in turn, and the SocietyOfMindAgent hands the team's work back as one reply.
With PersonaPipeline(refine=...) you get the same refinement without building a team.

The script streams the run, so it prints what every agent said (the writer's draft, each
reviewer's review) and then the society's final reply.

Run: python examples/autogen_refinement_team.py
Needs: pip install "persona-plugins[autogen,local]"
       (from a clone: pip install -e ".[autogen,local]", which `make demo` has already done)
"""

import asyncio

from autogen_agentchat.agents import AssistantAgent, SocietyOfMindAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import BaseTextChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client
from persona_plugins.refinement import ASPECTS, REVIEWER_SYSTEM_PROMPT

TASK = "Why did people build castles?"


def show(message: BaseTextChatMessage) -> None:
    print(f"[{message.source}] {message.content}\n", flush=True)


async def main() -> None:
    model = embedded_model_client(generation={"max_tokens": 64})
    writer = AssistantAgent(
        "writer",
        model_client=PersonaChatCompletionClient(model, persona="historian"),
        system_message=None,  # the persona is the writer's whole system prompt
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
    # run_stream yields the task, each inner agent's message as it is written, and the society's
    # final reply; run() would return the task and the final reply only.
    async for item in society.run_stream(task=TASK):
        if isinstance(item, BaseTextChatMessage):
            show(item)


if __name__ == "__main__":
    asyncio.run(main())
