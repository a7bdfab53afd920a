"""A RoundRobinGroupChat in which every agent speaks with its own persona.

Each agent gets its own PersonaChatCompletionClient around one shared model client, so one
model serves the whole team and each call carries the right persona. The script prints what each
agent said, as it arrives, then the model calls each agent made.

Run: python examples/autogen_team.py
Needs: pip install "persona-plugins[autogen,local]"
       (from a clone: pip install -e ".[autogen,local]", which `make demo` has already done)
"""

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import BaseTextChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client

TASK = "Why did people build castles?"


async def main() -> None:
    model = embedded_model_client(generation={"max_tokens": 96})
    clients = {
        name: PersonaChatCompletionClient(model, persona=name)
        for name in ("historian", "children_tutor")
    }
    agents = [
        # system_message=None: the persona is the whole system prompt. AutoGen's default
        # ("You are a helpful AI assistant ...") on top of it makes a small model answer
        # with a bare "The answer to this question is:".
        AssistantAgent(name, model_client=client, system_message=None)
        for name, client in clients.items()
    ]
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(3))
    async for item in team.run_stream(task=TASK):
        if isinstance(item, BaseTextChatMessage):
            print(f"[{item.source}] {item.content}\n", flush=True)
        elif isinstance(item, TaskResult):
            print(f"stopped: {item.stop_reason}")
    for name, client in clients.items():
        print(f"{name}: {client.model_calls} model call(s), {client.total_usage()}")


if __name__ == "__main__":
    asyncio.run(main())
