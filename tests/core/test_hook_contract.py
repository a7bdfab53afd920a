"""The hook contract a plugin author relies on: every hook may be async, misspelt hooks fail
loudly whenever the plugin was registered, plugins receive the turn's model with ``as_agent``, and
building pipelines keeps nothing on the shared plugin manager."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from persona_plugins import (
    Candidate,
    Finding,
    Message,
    Persona,
    PersonaChoice,
    PersonaPipeline,
    PluginError,
    TurnModel,
    hookimpl,
    new_plugin_manager,
)
from persona_plugins.candidates import complete_candidate
from persona_plugins.judging import judge_pair
from persona_plugins.plugins import check_plugins
from tests.core.doubles import ScriptedModel, registered

QUESTION = "What is 2 + 2?"
BEEKEEPER = Persona(name="async_beekeeper", description="a beekeeper who answers asynchronously")


# -- misspelt hooks ------------------------------------------------------------------------------


def test_a_plugin_registered_after_the_manager_with_a_misspelt_hook_fails_the_pipeline(
    plugin_manager,
):
    class Typo:
        @hookimpl
        def on_turn_completed(self, result):
            return None

    with registered(plugin_manager, Typo()), pytest.raises(PluginError) as info:
        PersonaPipeline(ScriptedModel(), plugin_manager=plugin_manager)
    message = str(info.value)
    assert "'Typo'" in message, "the error names the plugin"
    assert "'on_turn_completed'" in message, "and the hook"
    assert "did you mean 'on_turn_complete'" in message


def test_a_named_plugin_is_named_by_its_registered_name(plugin_manager):
    class Typo:
        @hookimpl
        def judge_candidate(self, candidates):
            return None

    plugin_manager.register(Typo(), name="my-judge")
    with pytest.raises(PluginError, match="'my-judge' implements 'judge_candidate'"):
        check_plugins(plugin_manager)


# -- async implementations of every kind of hook -------------------------------------------------


class AsyncEverything:
    """Implements one hook of each shape with ``async def``, recording what ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.observed: list[str] = []

    @hookimpl
    async def configure(self, config):  # set-up
        await _yield()
        self.ran.append("configure")

    @hookimpl
    async def register_personas(self, register):  # register
        await _yield()
        register(BEEKEEPER)
        self.ran.append("register_personas")

    @hookimpl
    async def persona_system_prompt(self, persona):  # decide
        await _yield()
        return f"ASYNC PROMPT for {persona.description}."

    @hookimpl
    async def inject_persona(self, messages, system_prompt):  # decide
        await _yield()
        return [Message.system(system_prompt + " (placed asynchronously)"), *messages]

    @hookimpl
    async def generate_candidates(self, prompt, model, settings):  # collect
        completion = await model.complete(prompt, **settings)
        return Candidate(name="async", text=completion.text, model_calls=1)

    @hookimpl
    async def on_turn_complete(self, result):  # collect, observe
        await _yield()
        self.observed.append(result.text)


async def _yield() -> None:
    import asyncio

    await asyncio.sleep(0)


async def test_async_implementations_of_every_hook_shape_are_awaited(bare_manager):
    plugin = AsyncEverything()
    bare_manager.unregister(name="persona_plugins.candidates")
    model = ScriptedModel("Buzz: four.")
    with registered(bare_manager, plugin):
        pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="async_beekeeper")
        result = await pipeline.run(QUESTION)
    assert plugin.ran == ["register_personas", "configure"]
    assert pipeline.personas["async_beekeeper"] == BEEKEEPER
    assert result.system_prompt == f"ASYNC PROMPT for {BEEKEEPER.description}."
    assert model.calls[0][0].content.endswith("(placed asynchronously)")
    assert [c.name for c in result.candidates] == ["async"]
    assert plugin.observed == ["Buzz: four."]
    assert result.errors == []


async def test_an_async_register_hook_works_when_the_pipeline_is_built_inside_a_running_loop(
    bare_manager,
):
    class AsyncDetectors:
        @hookimpl
        async def register_detectors(self, register):
            await _yield()
            register(Shouting())

    with registered(bare_manager, AsyncDetectors()):
        pipeline = PersonaPipeline(ScriptedModel("FOUR"), plugin_manager=bare_manager)
    assert "shouting" in pipeline.detectors


async def test_an_async_decide_implementation_that_resolves_to_none_defers_to_the_next(
    bare_manager,
):
    class Undecided:
        @hookimpl
        async def select_persona(self):
            await _yield()
            return None

        @hookimpl
        async def persona_system_prompt(self):
            return None

    model = ScriptedModel()
    with registered(bare_manager, Undecided()):
        result = await PersonaPipeline(
            model, plugin_manager=bare_manager, persona="math_teacher"
        ).run(QUESTION)
    assert (result.persona.name, result.persona_source) == ("math_teacher", "config")
    assert result.persona_note is None, "the built-in selection decided, not the fallback"
    assert result.system_prompt.startswith("You are"), "the built-in template wrote the prompt"


async def test_an_async_decide_implementation_that_decides_wins(bare_manager, teacher):
    class Chooser:
        @hookimpl
        async def select_persona(self, model):
            await model.complete([Message.user("Who should answer?")])
            return PersonaChoice(persona=teacher, source="async")

    with registered(bare_manager, Chooser()):
        result = await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager).run(QUESTION)
    assert (result.persona, result.persona_source, result.model_calls) == (teacher, "async", 2)


async def test_an_async_observer_that_raises_is_recorded(bare_manager):
    class Broken:
        @hookimpl
        async def on_turn_complete(self):
            raise RuntimeError("observer down")

    with registered(bare_manager, Broken()):
        result = await PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager).run(
            QUESTION
        )
    assert result.text == "4"
    assert [(e.stage, e.error) for e in result.errors] == [("on_turn_complete", "observer down")]


# -- the model plugins receive ---------------------------------------------------------------------


class Shouting:
    """A detector (``register_detectors``) that flags answers written in capitals."""

    name = "shouting"

    def check(self, messages, response, persona, config, model):
        if response.isupper():
            return [Finding(detector=self.name, message="the answer shouts", severity="info")]
        return []


async def test_hooks_receive_the_turn_model_and_may_trace_calls_as_an_agent(bare_manager):
    seen: list[object] = []

    class Judge:
        @hookimpl
        async def judge_candidates(self, candidates, model):
            seen.append(model)
            await model.as_agent("my_judge").complete([Message.user("Which?")])
            return None

    model = ScriptedModel(default="4")
    with registered(bare_manager, Judge()):
        result = await PersonaPipeline(
            model, plugin_manager=bare_manager, persona="math_teacher", ensemble="jekyll_hyde"
        ).run(QUESTION)
    assert isinstance(seen[0], TurnModel)
    assert result.model_calls == 3, "the judge's call counts toward the turn"


async def test_built_in_helpers_still_accept_a_plain_chat_model_when_called_directly():
    from persona_plugins import PipelineConfig

    plain = ScriptedModel("Verdict: 1", "Verdict: 2", default="an answer")
    a, b = Candidate(name="a", text="one"), Candidate(name="b", text="two")
    judgement = await judge_pair(QUESTION, a, b, PipelineConfig(), plain)
    assert judgement.chosen == "a" and judgement.model_calls == 2
    candidate = await complete_candidate("direct", plain, [Message.user(QUESTION)], {})
    assert candidate.text == "an answer"


# -- configure: once per plugin manager and configuration ----------------------------------------


def test_configure_is_called_once_per_manager_and_configuration(bare_manager):
    seen: list[str] = []

    class Setup:
        @hookimpl
        def configure(self, config):
            seen.append(config.guard)

    with registered(bare_manager, Setup()):
        for _ in range(5):
            PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor")
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="enforce")
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor")
    assert seen == ["monitor", "enforce"]


def test_a_configure_implementation_that_raises_names_the_plugin(bare_manager):
    class Broken:
        @hookimpl
        def configure(self, config):
            raise ValueError("cannot set up")

    with registered(bare_manager, Broken()), pytest.raises(PluginError, match="'Broken'"):
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager)


@pytest.mark.timeout(300)
def test_memory_stays_flat_over_ten_thousand_pipelines_on_one_manager():
    pm = new_plugin_manager(load_entrypoints=False)

    class Setup:
        @hookimpl
        def configure(self, config):
            return None

    pm.register(Setup())
    model = ScriptedModel()
    for _ in range(200):  # warm up caches (catalog, instruments, compiled models)
        PersonaPipeline(model, plugin_manager=pm, persona="math_teacher")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(10_000):
            PersonaPipeline(model, plugin_manager=pm, persona="math_teacher")
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # About 3 KB per pipeline was kept on the manager before; 10,000 pipelines must now leave
    # less than a few pipelines' worth.
    assert growth < 200_000, f"{growth} bytes kept after 10,000 pipelines"
    assert pm.hook.configure.spec is not None and not pm.hook.configure.spec.opts["historic"]
