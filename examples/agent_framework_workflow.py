"""An Agent Framework SequentialBuilder workflow of two agents with different personas.

Both agents share one chat client on the embedded model; each has its own PersonaMiddleware, so
each model call carries that agent's persona. One TeamGuardMiddleware in both agents sees every
reply (monopolization, drift from the task, the guard's detectors) and records what it finds.
The script prints what each agent said, then the model calls each agent made.

Run: python examples/agent_framework_workflow.py
Needs: pip install "persona-plugins[agent-framework,local]"
       (from a clone: pip install -e ".[agent-framework,local]")
"""

import asyncio

from agent_framework import Agent, AgentExecutor
from agent_framework.orchestrations import SequentialBuilder

from persona_plugins.adapters.agent_framework import (
    PersonaMiddleware,
    TeamGuardMiddleware,
    embedded_chat_client,
)

TASK = "Why did people build castles?"


async def main() -> None:
    client = embedded_chat_client(generation={"max_tokens": 96})
    team_guard = TeamGuardMiddleware(guard="monitor")
    personas = {name: PersonaMiddleware(persona=name) for name in ("historian", "children_tutor")}
    agents = [
        # No instructions: the persona is the whole system prompt (a small model follows one
        # block better than two). A continuation user turn after the historian's reply keeps
        # the tutor from merely repeating it.
        AgentExecutor(
            Agent(client=client, name=name, middleware=[persona, team_guard]),
            ensure_trailing_user_turn=True,
        )
        for name, persona in personas.items()
    ]
    workflow = SequentialBuilder(participants=agents).build()
    result = await workflow.run(TASK)
    print(f"[user] {TASK}\n")
    for speaker, text in team_guard.monitor.transcript:
        print(f"[{speaker}] {text}\n", flush=True)
    print(f"outputs: {len(result.get_outputs())}, team findings: {len(team_guard.findings)}")
    for name, persona in personas.items():
        print(f"{name}: {persona.model_calls} model call(s), {persona.usage}")


if __name__ == "__main__":
    asyncio.run(main())
