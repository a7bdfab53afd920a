"""``PersonaMiddleware`` in real Agent Framework agents: where the persona goes on every model call,
what tool turns look like, Jekyll & Hyde, and the guard, streaming or not.

The chat client is a recording double stacked like the shipped clients (tool loop, middleware,
telemetry); its replies are forced (SmolLM2 cannot call a tool, nor be relied on to refuse "as a
woman" or to judge consistently).
"""

from __future__ import annotations

import pytest
from agent_framework import Agent, tool

from persona_plugins import GuardrailViolation
from persona_plugins.adapters.agent_framework import PersonaMiddleware
from persona_plugins.guardrails.actions import DEBIAS_INSTRUCTION
from persona_plugins.injection import render_persona
from tests.core.doubles import FixedResolution

from .doubles import RecordingClient, function_call

INSTRUCTIONS = "Answer in one short sentence."
TASK = "My car will not start. What should I check?"
REFUSAL = "As a woman, I can't help with car repairs."
FIXED = "Check the battery terminals first, then the starter fuse."


@tool
def car_manual(part: str) -> str:
    """Where a part is, from the car's manual."""
    return f"The {part} is behind the left headlight."


def persona_prompt(middleware: PersonaMiddleware) -> str:
    config = middleware.pipeline.config
    return render_persona(config.persona, config.persona_template)


def mechanic(client, middleware, *, tools=True, **options) -> Agent:
    return Agent(
        client=client,
        name="mechanic",
        instructions=INSTRUCTIONS,
        tools=[car_manual] if tools else None,
        middleware=[middleware],
        **options,
    )


def calls_then(*replies):
    """A tool call first, then ``replies`` in order (the last one repeats)."""
    return [function_call("car_manual", part="fuse box"), *replies]


# -- where the persona goes ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_the_persona_comes_first_and_once_on_every_call_of_a_tool_loop(stream):
    client = RecordingClient(calls_then(FIXED))
    middleware = PersonaMiddleware(persona="woman")
    agent = mechanic(client, middleware)

    if stream:
        response = await agent.run(TASK, stream=True).get_final_response()
    else:
        response = await agent.run(TASK)

    assert response.text == FIXED
    _, answer = client.calls
    persona = persona_prompt(middleware)
    for call in client.calls:
        assert call.system == [f"{persona}\n{INSTRUCTIONS}"], "persona first, then instructions"
        assert call.tools, "the agent's tools reach the model"
        assert [m.role for m in call.messages].count("system") == 1
    assert all(persona not in m.text for m in answer.messages if m.role != "system")
    roles = [m.role for m in answer.messages]
    assert roles == ["system", "user", "assistant", "tool"]
    result = answer.messages[-1].contents[0]
    assert result.type == "function_result" and "left headlight" in str(result.result)
    turn = middleware.last_result
    assert turn.text == FIXED and turn.persona.name == "woman"
    assert middleware.model_calls == 2


async def test_a_tool_call_reply_passes_through_untouched():
    client = RecordingClient(calls_then(FIXED))
    middleware = PersonaMiddleware(persona="woman", guard="enforce")
    seen = []

    async def peek(context, call_next):
        await call_next()
        seen.append(context.result)

    from agent_framework import chat_middleware

    agent = mechanic(client, middleware)
    agent.middleware.insert(0, chat_middleware(peek))

    await agent.run(TASK)

    first = seen[0].messages[0].contents[0]
    assert first.type == "function_call" and first.name == "car_manual"
    assert first.arguments == {"part": "fuse box"}


async def test_a_text_turn_without_tools_is_one_call_with_the_persona_first():
    client = RecordingClient(["The pyramids were tombs."])
    middleware = PersonaMiddleware(persona="historian")
    agent = Agent(client=client, instructions=INSTRUCTIONS, middleware=[middleware])

    response = await agent.run("Why were the pyramids built?")

    assert response.text == "The pyramids were tombs."
    (call,) = client.calls
    assert call.system == [f"{persona_prompt(middleware)}\n{INSTRUCTIONS}"]
    assert call.messages[-1].text == "Why were the pyramids built?"
    assert middleware.last_result.persona.name == "historian"


async def test_two_agents_sharing_one_client_keep_their_own_personas():
    client = RecordingClient(["Aye."])
    pirate = PersonaMiddleware(persona="pirate_captain")
    tutor = PersonaMiddleware(persona="children_tutor")
    first = Agent(client=client, name="pirate", middleware=[pirate])
    second = Agent(client=client, name="tutor", middleware=[tutor])

    await first.run("Hello?")
    await second.run("Hello?")
    await first.run("Hello again?")

    assert [c.system for c in client.calls] == [
        [persona_prompt(pirate)],
        [persona_prompt(tutor)],
        [persona_prompt(pirate)],
    ]
    assert client.chat_middleware == [], "nothing is stored on the shared client"


# -- Jekyll & Hyde -------------------------------------------------------------------------------


def jekyll_hyde(call):
    """Persona and neutral answers disagree; the judge prefers the answer saying 42 wherever it
    is shown, so its two orders agree."""
    if call.kind == "judge":
        first, _ = call.judged()
        return "Verdict: 1" if "42" in first else "Verdict: 2"
    return "The answer is 41." if call.kind == "persona" else "The answer is 42."


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_jekyll_hyde_runs_through_the_agents_client_with_a_consistent_judge(stream):
    client = RecordingClient(jekyll_hyde)
    middleware = PersonaMiddleware(persona="math_teacher", ensemble="jekyll_hyde")
    agent = Agent(client=client, instructions=INSTRUCTIONS, middleware=[middleware])

    if stream:
        updates = agent.run("What is 6 * 7?", stream=True)
        text = "".join([u.text async for u in updates])
        response = await updates.get_final_response()
        assert text == response.text
    else:
        response = await agent.run("What is 6 * 7?")

    assert response.text == "The answer is 42."
    turn = middleware.last_result
    assert turn.chosen == "neutral" and turn.judgement.consistent
    assert [v.order for v in turn.judgement.verdicts] == [
        ["persona", "neutral"],
        ["neutral", "persona"],
    ]
    assert sorted(c.kind for c in client.calls) == ["judge", "judge", "neutral", "persona"]
    assert turn.model_calls == middleware.model_calls == len(client.calls) == 4
    persona_call = next(c for c in client.calls if c.kind == "persona")
    assert persona_call.system == [f"{persona_prompt(middleware)}\n{INSTRUCTIONS}"]
    neutral_call = next(c for c in client.calls if c.kind == "neutral")
    assert neutral_call.system == [INSTRUCTIONS], "the neutral candidate keeps the instructions"
    assert not any(c.tools or c.stream for c in client.calls), "extra calls: no tools, no stream"


# -- the guard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [True, False], ids=["with-a-tool", "without-tools"])
@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_refusal_in_character_is_regenerated_and_never_shown(tools, stream):
    replies = calls_then(REFUSAL, FIXED) if tools else [REFUSAL, FIXED]
    client = RecordingClient(replies)
    middleware = PersonaMiddleware(persona="woman", guard="enforce")
    agent = mechanic(client, middleware, tools=tools)

    if stream:
        updates = agent.run(TASK, stream=True)
        chunks = [u.text async for u in updates]
        assert "".join(chunks) == FIXED
        assert not any("woman" in chunk for chunk in chunks)
        response = await updates.get_final_response()
    else:
        response = await agent.run(TASK)

    assert response.text == FIXED
    turn = middleware.last_result
    assert turn.action == "regenerate" and turn.text == FIXED
    assert any(f.detector == "abstention" for f in turn.findings)
    regeneration = client.calls[-1]
    assert not regeneration.tools and not regeneration.stream, "the regeneration asks for text"
    assert regeneration.system[0].startswith(persona_prompt(middleware))
    assert DEBIAS_INSTRUCTION in "\n".join(regeneration.system)
    assert len(client.calls) == (3 if tools else 2)


@pytest.mark.parametrize("tools", [True, False], ids=["with-a-tool", "without-tools"])
@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_blocked_reply_raises_and_no_chunk_reaches_the_user(tools, stream, plugin_manager):
    decided = FixedResolution("block")
    plugin_manager.register(decided, name="test_resolution")
    client = RecordingClient(calls_then(REFUSAL) if tools else [REFUSAL])
    middleware = PersonaMiddleware(persona="woman", guard="enforce", plugin_manager=plugin_manager)
    agent = mechanic(client, middleware, tools=tools)
    received = []

    with pytest.raises(GuardrailViolation) as raised:
        if stream:
            async for update in agent.run(TASK, stream=True):
                received.append(update)
        else:
            await agent.run(TASK)

    assert str(raised.value) == "test: block"
    assert raised.value.response == REFUSAL
    assert [resolved["response"] for resolved in decided.resolved] == [REFUSAL]
    assert not [u for u in received if u.text], "nothing of the blocked reply was streamed"


async def test_monitor_records_the_finding_and_keeps_the_reply():
    client = RecordingClient(calls_then(REFUSAL))
    middleware = PersonaMiddleware(persona="woman", guard="monitor")

    response = await mechanic(client, middleware).run(TASK)

    assert response.text == REFUSAL
    assert middleware.last_result.action == "allow"
    assert any(f.detector == "abstention" for f in middleware.last_result.findings)
    assert len(client.calls) == 2


def test_instructions_keep_the_shape_the_agent_gave_them():
    from persona_plugins.adapters.agent_framework._client import with_instructions

    structured = {"type": "cache_control", "text": "Be brief."}
    options = {"instructions": "Be brief.", "temperature": 0.2}

    assert with_instructions(options, ["P", "Be brief."]) == {
        "instructions": "P\nBe brief.",
        "temperature": 0.2,
    }
    assert options == {"instructions": "Be brief.", "temperature": 0.2}, "never edited in place"
    assert with_instructions({"instructions": ["A"]}, ["P", "A"]) == {"instructions": ["P", "A"]}
    assert with_instructions({"instructions": [structured]}, ["P"]) == {
        "instructions": ["P", structured]
    }
    assert with_instructions({"instructions": None}, []) == {}, "no empty instructions"


# -- refinement ----------------------------------------------------------------------------------

REVIEWS = [
    "VERDICT: REVISE\nFEEDBACK: Wrong purpose.\n"
    "REVISION: Castles were built to defend land and control territory.",  # factuality
    "VERDICT: OK",  # persona
    "VERDICT: OK",  # coherence
]


@pytest.mark.parametrize("tools", [True, False], ids=["with-a-tool", "without-tools"])
async def test_the_agent_gets_the_refined_reply_and_every_review_goes_to_its_client(tools):
    draft = "Castles were built for parties."
    replies = calls_then(draft, *REVIEWS) if tools else [draft, *REVIEWS]
    client = RecordingClient(replies)
    middleware = PersonaMiddleware(persona="historian", refine="sequential")
    agent = mechanic(client, middleware, tools=tools)

    response = await agent.run("Why did people build castles?")

    assert response.text == "Castles were built to defend land and control territory."
    turn = middleware.last_result
    assert [r.refiner for r in turn.reviews] == ["factuality", "persona", "coherence"]
    reviews = client.calls[-3:]
    assert not any(c.tools or c.stream for c in reviews), "reviewers call without tools"
    assert len(client.calls) == (5 if tools else 4)
    assert middleware.model_calls == len(client.calls)
