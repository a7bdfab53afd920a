"""The team checks on a distributed runtime: a ``GrpcWorkerAgentRuntimeHost`` on loopback, one
``GrpcWorkerAgentRuntime`` worker per member, and each member's ``TeamGuardClient``.

``GrpcWorkerAgentRuntime`` takes no intervention handler, so ``TeamGuardHandler`` cannot guard
such a team; the checks run in each member's model client instead, over what the member received
through the host. The gRPC host, the workers and the ``AssistantAgent`` members are real; the
members' replies are scripted (``ReplayChatCompletionClient``) so that one member talks far more
than the other: the fault under test is the monopolization, not anything a model writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import (
    ClosureAgent,
    ClosureContext,
    DefaultTopicId,
    MessageContext,
    RoutedAgent,
    TopicId,
    TypeSubscription,
    message_handler,
    try_get_known_serializers_for_type,
)
from autogen_core.models import ChatCompletionClient
from autogen_ext.models.replay import ReplayChatCompletionClient

from persona_plugins.adapters.autogen import TeamGuardClient, embedded_model_client
from tests.conftest import free_port

grpc = pytest.importorskip("autogen_ext.runtimes.grpc")

pytestmark = pytest.mark.timeout(120)

TOPIC = "discussion"
TASK = "Plan a picnic for six people. The budget must stay under 50 euros."
NOTE = "[persona-plugins team guard: "
LONG = (
    "For six people I would buy two baguettes, cheese, tomatoes, fruit and lemonade, which "
    "keeps the picnic budget near 35 euros, and I would add a blanket, plates, napkins and a "
    "small dessert so that everyone is fed and the budget stays under 50 euros."
)


@dataclass
class Utterance:
    """One message of the discussion, as it travels through the host."""

    speaker: str
    text: str
    turn: int


class Member(RoutedAgent):
    """A team member on its own worker: it keeps what the others said and, on its turn in the
    round, answers through an ``AssistantAgent`` (which calls the member's model client)."""

    def __init__(self, name: str, client: ChatCompletionClient, order: list[str], replies: int):
        super().__init__(f"member {name}")
        self.agent = AssistantAgent(name, model_client=client)
        self.order, self.replies = order, replies
        self.unread: list[TextMessage] = []

    @message_handler
    async def on_utterance(self, message: Utterance, ctx: MessageContext) -> None:
        self.unread.append(TextMessage(content=message.text, source=message.speaker))
        due = self.order[message.turn % len(self.order)] == self.agent.name
        if message.turn >= self.replies or not due:
            return
        response = await self.agent.on_messages(self.unread, ctx.cancellation_token)
        self.unread = []
        reply = Utterance(self.agent.name, str(response.chat_message.content), message.turn + 1)
        await self.publish_message(reply, DefaultTopicId(type=TOPIC))


async def discuss(clients: Mapping[str, ChatCompletionClient], replies: int) -> list[Utterance]:
    """Run a round-robin discussion of ``replies`` replies, each member on its own worker;
    return every reply as a listener on the first worker received it."""
    address = f"127.0.0.1:{free_port()}"
    host = grpc.GrpcWorkerAgentRuntimeHost(address=address)
    host.start()
    heard: asyncio.Queue[Utterance] = asyncio.Queue()

    async def listen(_: ClosureContext, message: Utterance, ctx: MessageContext) -> None:
        if message.speaker != "user":
            await heard.put(message)

    workers = []
    try:
        order = list(clients)
        for name, client in clients.items():
            worker = grpc.GrpcWorkerAgentRuntime(host_address=address)
            await worker.start()
            workers.append(worker)
            worker.add_message_serializer(try_get_known_serializers_for_type(Utterance))

            def member(name: str = name, client: ChatCompletionClient = client) -> Member:
                return Member(name, client, order, replies)

            await Member.register(worker, name, member)
            await worker.add_subscription(TypeSubscription(TOPIC, name))
        await ClosureAgent.register_closure(
            workers[0],
            "listener",
            listen,
            subscriptions=lambda: [TypeSubscription(TOPIC, "listener")],
        )
        await workers[0].publish_message(Utterance("user", TASK, 0), TopicId(TOPIC, "default"))
        return [await asyncio.wait_for(heard.get(), 60) for _ in range(replies)]
    finally:
        for worker in workers:
            await worker.stop()
        await host.stop(grace=1)


async def test_a_member_who_monopolizes_a_distributed_team_is_flagged_across_workers():
    settings = {"detectors": [], "min_turns": 3, "max_share": 0.6, "max_turns": 4}
    chef = TeamGuardClient(ReplayChatCompletionClient([LONG] * 3), "chef", **settings)
    tutor = TeamGuardClient(ReplayChatCompletionClient(["Agreed."] * 3), "tutor", **settings)

    heard = await discuss({"chef": chef, "tutor": tutor}, replies=6)

    assert [(u.speaker, u.turn) for u in heard] == [
        ("chef", 1),
        ("tutor", 2),
        ("chef", 3),
        ("tutor", 4),
        ("chef", 5),
        ("tutor", 6),
    ]
    # Each worker's guard saw the whole discussion, the other worker's messages included, with
    # the task from the user's message and the notes its members appended taken off again.
    assert chef.team_guard.monitor.task == TASK == tutor.team_guard.monitor.task
    seen = tutor.team_guard.monitor.transcript
    assert [s for s, _ in seen] == ["user", "chef", "tutor", "chef", "tutor", "chef", "tutor"]
    assert all(NOTE not in text for _, text in seen)
    assert seen[3] == ("chef", LONG)

    def found(client: TeamGuardClient) -> list[tuple[str, int]]:
        return [(f.detector, f.metadata["turn"]) for f in client.findings]

    # Monopolization once the members have taken three turns; the chef's guard flags the chef's
    # own third reply, the tutor's guard the tutor's next one; past four turns, the length.
    assert found(chef) == [("monopolization", 4), ("discussion_length", 6)]
    assert found(tutor) == [("monopolization", 5), ("discussion_length", 7)]
    assert {f.metadata["speaker"] for f in chef.findings if f.detector == "monopolization"} == {
        "chef"
    }
    share = chef.findings[0].metadata["share"]
    assert share > 0.9
    # The notes travelled through the host: what the listener received is the rewritten text.
    assert heard[2].text.startswith(LONG) and f"{NOTE}chef has spoken" in heard[2].text
    assert f"{NOTE}chef has spoken" in heard[3].text
    assert "run past 4 turns" in heard[4].text and "run past 4 turns" in heard[5].text
    assert all(NOTE not in u.text for u in heard[:2])


async def test_in_monitor_mode_the_findings_are_recorded_and_the_messages_left_alone():
    settings = {"guard": "monitor", "detectors": [], "min_turns": 2, "max_turns": 2}
    chef = TeamGuardClient(ReplayChatCompletionClient([LONG] * 2), "chef", **settings)
    tutor = TeamGuardClient(ReplayChatCompletionClient(["Fine."] * 2), "tutor", **settings)

    heard = await discuss({"chef": chef, "tutor": tutor}, replies=4)

    assert [u.text for u in heard] == [LONG, "Fine.", LONG, "Fine."]
    assert {"monopolization", "discussion_length"} <= {f.detector for f in tutor.findings}
    assert chef.team_guard.rewrites == tutor.team_guard.rewrites == 0


@pytest.mark.model
@pytest.mark.timeout(300)
async def test_members_on_the_embedded_model_get_the_length_note_on_two_workers():
    model = embedded_model_client(generation={"max_tokens": 32})
    settings = {"detectors": [], "max_turns": 3, "max_share": 1.0}
    clients = {n: TeamGuardClient(model, n, **settings) for n in ("chef", "tutor")}

    heard = await discuss(clients, replies=4)

    assert [u.speaker for u in heard] == ["chef", "tutor", "chef", "tutor"]
    [length] = [f for f in clients["tutor"].findings if f.detector == "discussion_length"]
    assert length.metadata["turn"] == 5  # the task, then the fourth reply
    assert f"{NOTE}the discussion has run past 3 turns" in heard[3].text
    assert all("run past" not in u.text for u in heard[:3])
