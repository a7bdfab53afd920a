"""A distributed AutoGen team with personas: a ``GrpcWorkerAgentRuntimeHost`` and two
``GrpcWorkerAgentRuntime`` workers on loopback, each member with its own
``PersonaChatCompletionClient`` inside a ``TeamGuardClient``.

The runtimes and the agents are real; the model client under each member's wrappers records what
it is sent, so the test can check that every model call of every member, on either worker,
carries that member's persona first, and that what one member said crossed to the other worker.
"""

from __future__ import annotations

import pytest
from autogen_core.models import SystemMessage

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, TeamGuardClient
from persona_plugins.injection import render_persona
from persona_plugins.personas import builtin_personas
from tests.adapters.autogen.doubles import RecordingClient
from tests.adapters.autogen.test_team_guard_grpc import NOTE, discuss

pytest.importorskip("autogen_ext.runtimes.grpc")
pytestmark = pytest.mark.timeout(120)

CATALOG = {p.name: p for p in builtin_personas()}
SAID = {
    "historian": "Castles were built to defend land and to show the lord's power over it.",
    "children_tutor": "Think of a castle as a big, strong house that kept a family safe.",
}


async def test_every_model_call_on_either_worker_carries_its_members_persona():
    recorders = {name: RecordingClient([text]) for name, text in SAID.items()}
    clients = {
        name: TeamGuardClient(
            PersonaChatCompletionClient(recorders[name], persona=name),
            name,
            detectors=[],
            max_turns=3,
            max_share=1.0,
        )
        for name in SAID
    }

    heard = await discuss(clients, replies=4)

    assert [u.speaker for u in heard] == ["historian", "children_tutor"] * 2
    for name, recorder in recorders.items():
        assert len(recorder.calls) == 2, f"{name} answered twice"
        expected = render_persona(
            CATALOG[name], clients[name].inner.pipeline.config.persona_template
        )
        for call in recorder.calls:
            first = call["messages"][0]
            assert isinstance(first, SystemMessage) and first.content == expected
            # once: the agent's own system message follows it, never a second persona
            assert sum(m.content == expected for m in call["messages"]) == 1
    # what the historian said on its worker reached the tutor's model on the other worker
    tutor_first_call = recorders["children_tutor"].calls[0]["messages"]
    assert any(SAID["historian"] in str(m.content) for m in tutor_first_call)
    # and the team checks ran there too: the fourth reply carries the length note
    assert f"{NOTE}the discussion has run past 3 turns" in heard[3].text
