"""A team spread over two processes' worth of AutoGen runtimes: a gRPC host and two workers.

AutoGen's distributed runtime (``GrpcWorkerAgentRuntimeHost`` + ``GrpcWorkerAgentRuntime``) moves
messages between workers; here both workers and the host run in this one process, on loopback, to
keep the example self-contained (in production each worker is its own process or machine, with
the same code). Each member lives on its own worker, with its own ``PersonaChatCompletionClient``
(its persona on every model call) inside a ``TeamGuardClient`` (the team checks: monopolization,
drift, discussion length). A gRPC worker accepts no intervention handler, so the team checks run
in each member's model client, over the discussion the member received through the host.

Run: python examples/distributed_autogen_team.py
Needs: pip install "persona-plugins[autogen,local]" "autogen-ext[grpc]"
       (from a clone, `make test` installs both)
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import (
    DefaultTopicId,
    MessageContext,
    RoutedAgent,
    TypeSubscription,
    message_handler,
    try_get_known_serializers_for_type,
)
from autogen_core.models import ChatCompletionClient
from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime, GrpcWorkerAgentRuntimeHost

from persona_plugins.adapters.autogen import (
    PersonaChatCompletionClient,
    TeamGuardClient,
    embedded_model_client,
)

TOPIC = "castles"
TASK = "Why did people build castles?"
MEMBERS = ("historian", "children_tutor")
REPLIES = 4  # replies in all, taken in turn


@dataclass
class Said:
    """One message of the discussion, as it travels between workers."""

    speaker: str
    text: str
    turn: int


class Member(RoutedAgent):
    """A member on its own worker: it collects what it hears and, on its turn, answers through an
    ``AssistantAgent`` whose model client carries its persona and the team checks."""

    def __init__(self, name: str, client: ChatCompletionClient, done: asyncio.Queue[Said]):
        super().__init__(f"team member {name}")
        self.agent = AssistantAgent(name, model_client=client, system_message=None)
        self.heard: list[TextMessage] = []
        self.done = done

    @message_handler
    async def on_said(self, message: Said, ctx: MessageContext) -> None:
        if message.speaker != self.agent.name:
            self.heard.append(TextMessage(content=message.text, source=message.speaker))
        if message.turn >= REPLIES or MEMBERS[message.turn % len(MEMBERS)] != self.agent.name:
            return
        response = await self.agent.on_messages(self.heard, ctx.cancellation_token)
        self.heard = []
        reply = Said(self.agent.name, str(response.chat_message.content), message.turn + 1)
        print(f"[{reply.speaker}] {reply.text}\n", flush=True)
        await self.done.put(reply)
        await self.publish_message(reply, DefaultTopicId(type=TOPIC))


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


async def main() -> None:
    model = embedded_model_client(generation={"max_tokens": 64})
    address = free_address()
    host = GrpcWorkerAgentRuntimeHost(address=address)
    host.start()
    done: asyncio.Queue[Said] = asyncio.Queue()
    clients: dict[str, TeamGuardClient] = {}
    workers: list[GrpcWorkerAgentRuntime] = []
    try:
        for name in MEMBERS:
            worker = GrpcWorkerAgentRuntime(host_address=address)
            await worker.start()
            workers.append(worker)
            worker.add_message_serializer(try_get_known_serializers_for_type(Said))
            persona_client = PersonaChatCompletionClient(model, persona=name)
            clients[name] = TeamGuardClient(persona_client, name, task=TASK, max_turns=3)

            def make(name: str = name) -> Member:
                return Member(name, clients[name], done)

            await Member.register(worker, name, make)
            await worker.add_subscription(TypeSubscription(TOPIC, name))
        print(f"[user] {TASK}\n", flush=True)
        await workers[0].publish_message(Said("user", TASK, 0), DefaultTopicId(type=TOPIC))
        for _ in range(REPLIES):
            await asyncio.wait_for(done.get(), timeout=300)
    finally:
        for worker in workers:
            await worker.stop()
        await host.stop(grace=1)
    for name, client in clients.items():
        findings = ", ".join(f.detector for f in client.findings) or "none"
        print(f"{name}: {client.inner.model_calls} model call(s), team findings: {findings}")


if __name__ == "__main__":
    asyncio.run(main())
