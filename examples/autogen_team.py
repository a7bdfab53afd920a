"""A RoundRobinGroupChat in which every agent speaks with its own persona.

Each agent gets its own PersonaChatCompletionClient around one shared model client, so one
model serves the whole team and each call carries the right persona.

Run: python examples/autogen_team.py
Needs: pip install "persona-plugins[autogen,local]"
"""

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client


async def main() -> None:
    model = embedded_model_client()
    agents = [
        AssistantAgent(name, model_client=PersonaChatCompletionClient(model, persona=name))
        for name in ("historian", "children_tutor")
    ]
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(3))
    result = await team.run(task="Why did people build castles?")
    for message in result.messages:
        print(f"[{message.source}] {message.content}\n")


if __name__ == "__main__":
    asyncio.run(main())
