"""Refinement: reviewers, strategies, the adaptive planner and its fallback, faults, rounds."""

from __future__ import annotations

import asyncio

import pytest

from persona_plugins import Completion, PersonaPipeline, hookimpl
from persona_plugins.refinement import (
    MERGE_SYSTEM_PROMPT,
    PLANNER_SYSTEM_PROMPT,
    heuristic_plan,
    parse_plan,
    parse_review,
    usable_revision,
)

DRAFT = "Paris is the capital of France. It has about 2 million inhabitants."


class RefineModel:
    """Answers by role. ``reviews`` maps an aspect keyword to the reviewer's reply (a string, an
    exception, or "STALL" to never answer); the planner and merger have their own replies."""

    model_name = "scripted"

    def __init__(self, reviews=None, plan="PLAN: factuality\nRATIONALE: facts.", merge="Merged."):
        self.reviews = reviews or {}
        self.plan, self.merge = plan, merge
        self.calls: list[str] = []

    async def complete(self, messages, **settings):
        system = messages[0].content if messages[0].role == "system" else ""
        if system.startswith("You are one reviewer"):
            aspect = next(k for k in ("factual", "persona fit", "coherence") if k in system)
            self.calls.append(f"review:{aspect}")
            reply = self.reviews.get(aspect, "VERDICT: OK")
            if callable(reply):
                reply = reply()
        elif system == PLANNER_SYSTEM_PROMPT.split("{")[0] or system.startswith(
            PLANNER_SYSTEM_PROMPT.split("{")[0]
        ):
            self.calls.append("plan")
            reply = self.plan
        elif system == MERGE_SYSTEM_PROMPT:
            self.calls.append("merge")
            reply = self.merge
        else:
            self.calls.append("answer")
            reply = DRAFT
        if reply == "STALL":
            await asyncio.sleep(3600)
        if isinstance(reply, Exception):
            raise reply
        return Completion(text=reply)


def run(model, plugin_manager, question="What is the capital of France?", **config):
    return PersonaPipeline(model, plugin_manager=plugin_manager, **config).run(question)


REVISE_FACTS = (
    "VERDICT: REVISE\nFEEDBACK: The population is closer to 2.1 million.\n"
    "REVISION: Paris is the capital of France, with about 2.1 million inhabitants."
)
REVISE_COHERENCE = (
    "VERDICT: REVISE\nFEEDBACK: Lead with the answer.\nREVISION: The capital of France is Paris."
)


async def test_sequential_runs_every_reviewer_in_the_fixed_order(plugin_manager):
    model = RefineModel({"factual": REVISE_FACTS})
    result = await run(model, plugin_manager, refine="sequential", persona="historian")
    assert model.calls == [
        "answer",
        "review:factual",
        "review:persona fit",
        "review:coherence",
        # round 2: a reviewer asked for a change, but max_rounds defaults to 1
    ]
    assert result.refinement_plan.refiners == ["factuality", "persona", "coherence"]
    assert result.refinement_plan.source == "fixed"
    assert result.text == "Paris is the capital of France, with about 2.1 million inhabitants."
    assert [(r.refiner, r.needs_change) for r in result.reviews] == [
        ("factuality", True),
        ("persona", False),
        ("coherence", False),
    ]
    assert result.model_calls == 4


async def test_without_a_persona_the_persona_reviewer_is_left_out(plugin_manager):
    model = RefineModel()
    result = await run(model, plugin_manager, refine="sequential")
    assert result.refinement_plan.refiners == ["factuality", "coherence"]
    assert model.calls == ["answer", "review:factual", "review:coherence"]


async def test_rounds_continue_while_reviewers_ask_and_stop_at_max_rounds(plugin_manager):
    versions = iter(range(1, 100))

    def ever_changing():
        return f"VERDICT: REVISE\nFEEDBACK: again\nREVISION: Paris, version {next(versions)}."

    model = RefineModel({"factual": ever_changing})
    result = await run(model, plugin_manager, refine="sequential", max_rounds=3)
    # the factuality reviewer asks for a new change every round: capped at 3 rounds
    assert model.calls.count("review:factual") == 3
    assert {r.round for r in result.reviews} == {1, 2, 3}
    assert result.text == "Paris, version 3."


async def test_a_revision_equal_to_the_draft_is_not_a_change(plugin_manager):
    model = RefineModel({"factual": REVISE_FACTS})
    result = await run(model, plugin_manager, refine="sequential", max_rounds=3)
    # round 2 proposes the text it already is, so the rounds stop there
    assert model.calls.count("review:factual") == 2
    assert result.reviews[-2].needs_change is False


async def test_rounds_stop_as_soon_as_no_reviewer_asks_for_a_change(plugin_manager):
    model = RefineModel()
    result = await run(model, plugin_manager, refine="sequential", max_rounds=5)
    assert {r.round for r in result.reviews} == {1}
    assert result.text == DRAFT


async def test_parallel_reviews_the_same_draft_then_merges_once(plugin_manager):
    model = RefineModel({"factual": REVISE_FACTS, "coherence": REVISE_COHERENCE}, merge="Final.")
    result = await run(model, plugin_manager, refine="parallel")
    assert sorted(model.calls) == ["answer", "merge", "review:coherence", "review:factual"]
    assert model.calls[-1] == "merge"
    assert result.refinement_plan.parallel
    assert result.text == "Final."


async def test_parallel_with_a_single_revision_needs_no_merge_call(plugin_manager):
    model = RefineModel({"factual": REVISE_FACTS})
    result = await run(model, plugin_manager, refine="parallel")
    assert "merge" not in model.calls
    assert result.text.endswith("2.1 million inhabitants.")


async def test_an_unusable_merge_keeps_a_valid_revision(plugin_manager):
    model = RefineModel({"factual": REVISE_FACTS, "coherence": REVISE_COHERENCE}, merge="   ")
    result = await run(model, plugin_manager, refine="parallel")
    assert result.text.endswith("2.1 million inhabitants.")


async def test_adaptive_asks_the_planner_and_runs_only_what_it_chose(plugin_manager):
    model = RefineModel(
        {"coherence": REVISE_COHERENCE},
        plan="PLAN: coherence\nRATIONALE: the reply buries the answer.",
    )
    result = await run(model, plugin_manager, refine="adaptive", persona="historian")
    assert model.calls == ["answer", "plan", "review:coherence"]
    plan = result.refinement_plan
    assert plan.refiners == ["coherence"] and plan.source == "planner"
    assert plan.rationale == "the reply buries the answer."
    assert result.text == "The capital of France is Paris."


async def test_adaptive_planner_junk_falls_back_to_the_documented_heuristic(plugin_manager):
    model = RefineModel(plan="I think we should make it better!!!")
    result = await run(model, plugin_manager, refine="adaptive")
    plan = result.refinement_plan
    assert plan.source == "heuristic" and "unreadable plan" in plan.rationale
    # a "what" question with no persona: factuality, and no persona reviewer
    assert plan.refiners == ["factuality"]
    assert model.calls == ["answer", "plan", "review:factual"]


async def test_a_failing_planner_call_also_falls_back(plugin_manager):
    model = RefineModel(plan=RuntimeError("planner down"))
    result = await run(model, plugin_manager, refine="adaptive", persona="historian")
    assert result.refinement_plan.source == "heuristic"
    assert "planner down" in result.refinement_plan.rationale
    assert result.refinement_plan.refiners == ["factuality", "persona"]


async def test_the_planner_cannot_choose_the_persona_reviewer_without_a_persona(plugin_manager):
    model = RefineModel(plan="PLAN: persona, factuality\nRATIONALE: x")
    result = await run(model, plugin_manager, refine="adaptive")
    assert result.refinement_plan.refiners == ["factuality"]


async def test_a_reviewer_that_raises_leaves_the_draft_and_records_why(plugin_manager):
    model = RefineModel({"factual": RuntimeError("reviewer crashed")})
    result = await run(model, plugin_manager, refine="sequential")
    assert result.text == DRAFT
    failed = result.reviews[0]
    assert failed.refiner == "factuality" and "reviewer crashed" in failed.error
    assert result.reviews[1].refiner == "coherence"


async def test_a_reviewer_that_stalls_times_out_and_the_draft_survives(plugin_manager):
    model = RefineModel({"factual": "STALL"})
    result = await run(model, plugin_manager, refine="sequential", timeout_s=0.2)
    assert result.text == DRAFT
    assert "TimeoutError" in result.reviews[0].error


async def test_a_garbage_review_keeps_the_draft(plugin_manager):
    model = RefineModel({"factual": "lorem ipsum \x00\x01 ###", "coherence": "VERDICT: REVISE"})
    result = await run(model, plugin_manager, refine="sequential")
    assert result.text == DRAFT
    assert "unreadable review" in result.reviews[0].error
    assert result.reviews[1].error == "the revision is empty"


async def test_plugins_register_more_reviewers(plugin_manager):
    class Brevity:
        name, description = "brevity", "keeps replies short"

        async def review(self, messages, draft, persona, model):
            from persona_plugins import Review

            return Review(refiner=self.name, needs_change=True, revision=draft.split(".")[0] + ".")

    class Plugin:
        @hookimpl
        def register_refiners(self, register):
            register(Brevity())

    plugin_manager.register(Plugin())
    model = RefineModel()
    result = await run(
        model, plugin_manager, refine="sequential", refiners=["factuality", "brevity"]
    )
    assert result.refinement_plan.refiners == ["factuality", "brevity"]
    assert result.text == "Paris is the capital of France."


@pytest.mark.parametrize(
    "reply,needs_change,revision,error",
    [
        ("VERDICT: OK", False, None, None),
        ("**Verdict:** ok\nFEEDBACK: fine", False, None, None),
        (REVISE_COHERENCE, True, "The capital of France is Paris.", None),
        ("VERDICT: REVISE\nFEEDBACK: wrong", True, None, "the revision is empty"),
        ("nonsense", False, None, "unreadable review"),
        (f"VERDICT: REVISE\nREVISION: {DRAFT}", False, None, None),  # no real change
    ],
)
def test_parse_review(reply, needs_change, revision, error):
    review = parse_review("factuality", reply, DRAFT)
    assert review.needs_change == needs_change
    assert review.revision == revision
    assert (review.error or "").startswith(error or "") and bool(review.error) == bool(error)


def test_parse_plan():
    names = ["factuality", "persona", "coherence"]
    assert parse_plan("PLAN: coherence, factuality\nRATIONALE: r", names) == (
        ["coherence", "factuality"],
        "r",
    )
    assert parse_plan("PLAN: none\nRATIONALE: fine as is", names) == ([], "fine as is")
    assert parse_plan("Plan: Factuality -> Persona", names)[0] == ["factuality", "persona"]
    assert parse_plan("PLAN: spelling", names) is None
    assert parse_plan("no plan here", names) is None


def test_usable_revision():
    assert usable_revision("draft", "A better reply.") is None
    assert usable_revision("draft", "  ") == "the revision is empty"
    assert "review format" in usable_revision("draft", "VERDICT: OK\nFEEDBACK: x")
    assert "characters" in usable_revision("short", "x" * 5000)


def test_heuristic_plan():
    from persona_plugins import Message, Persona

    names = ["factuality", "persona", "coherence"]
    who = [Message.user("Who wrote Hamlet?")]
    assert heuristic_plan(who, "Shakespeare.", names, None) == ["factuality"]
    persona = Persona(name="p", description="a pirate")
    assert heuristic_plan(who, "Shakespeare.", names, persona) == ["factuality", "persona"]
    chat = [Message.user("tell me a story please")]
    assert heuristic_plan(chat, "Once upon a time.", names, None) == ["coherence"]
    assert heuristic_plan(chat, "word " * 130, names, None) == ["coherence"]
