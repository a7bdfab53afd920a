"""A Semantic Kernel SequentialOrchestration of persona agents, on the embedded model.

Each agent has its own PersonaChatCompletion around one shared chat service, so one model serves
the whole orchestration and each call carries the right persona. The orchestrations stream
(``invoke_stream``); with persona injection only, the model's own stream passes straight through.

Run: python examples/sk_orchestration.py
Needs: pip install "persona-plugins[semantic-kernel,local]"
       (from a clone: pip install -e ".[semantic-kernel,local]"; `make demo` does not install
       Semantic Kernel: add it with .venv/bin/pip install -e ".[semantic-kernel]")
"""

import asyncio

from semantic_kernel.agents import ChatCompletionAgent, SequentialOrchestration
from semantic_kernel.agents.runtime import InProcessRuntime
from semantic_kernel.contents import ChatMessageContent

from persona_plugins.adapters.semantic_kernel import PersonaChatCompletion, embedded_chat_completion


def show(message: ChatMessageContent) -> None:
    print(f"[{message.name}] {message.content}\n")


async def main() -> None:
    model = embedded_chat_completion(generation={"max_tokens": 96})
    agents = [
        ChatCompletionAgent(
            name=name,
            description=f"A {name.replace('_', ' ')}.",  # orchestrations need a description
            service=PersonaChatCompletion(model, persona=name),
        )
        for name in ("historian", "children_tutor")
    ]
    orchestration = SequentialOrchestration(members=agents, agent_response_callback=show)
    runtime = InProcessRuntime()
    runtime.start()
    try:
        result = await orchestration.invoke(task="Why did people build castles?", runtime=runtime)
        await result.get(timeout=600)
    finally:
        await runtime.stop_when_idle()
    for agent in agents:
        print(f"{agent.name}: {agent.service.model_calls} model call(s), {agent.service.usage}")


if __name__ == "__main__":
    asyncio.run(main())
