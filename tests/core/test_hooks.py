"""Meta-tests of the hook specifications: documented, typed, coherent in shape, each one tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from persona_plugins import hookimpl, hookspec, hookspecs
from persona_plugins.hookspecs import PROJECT_NAME

SPEC_MARKER = f"{PROJECT_NAME}_spec"
SPECS = {
    name: fn
    for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, SPEC_MARKER)
}
DECIDE_SENTENCE = "Stops at first non-None result"

#: The stages of a turn (DESIGN.md), each with the hooks that carry it.
DESIGNED_HOOKS = {
    "configure",
    "register_personas",
    "select_persona",
    "persona_system_prompt",
    "inject_persona",
    "generate_candidates",
    "judge_candidates",
    "register_refiners",
    "plan_refinement",
    "register_detectors",
    "check_response",
    "resolve_findings",
    "on_turn_complete",
}


def spec_of(name: str):
    return getattr(SPECS[name], SPEC_MARKER)


def argnames(name: str) -> list[str]:
    return list(inspect.signature(SPECS[name]).parameters)


def test_markers_are_named_after_the_project():
    assert hookspec.project_name == hookimpl.project_name == "persona_plugins"


def test_every_designed_stage_hook_exists():
    assert set(SPECS) >= DESIGNED_HOOKS


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_documents_each_of_its_arguments(plugin_manager, name):
    doc = inspect.getdoc(SPECS[name]) or ""
    spec_args = plugin_manager.hook.__dict__[name].spec.argnames
    assert spec_args, f"{name} takes no arguments"
    for arg in spec_args:
        assert f":param {arg}:" in doc, f"{name} does not document {arg!r}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_docstring_opens_with_a_summary_naming_its_shape(name):
    doc = inspect.getdoc(SPECS[name]) or ""
    summary = doc.splitlines()[0]
    assert re.search(r"\((decide|collect|register|set-up)\b", summary), summary


@pytest.mark.parametrize("name", sorted(SPECS))
def test_decide_hooks_and_only_they_stop_at_the_first_result(name):
    doc = inspect.getdoc(SPECS[name]) or ""
    firstresult = spec_of(name).get("firstresult", False)
    assert (DECIDE_SENTENCE in doc) == firstresult
    assert ("(decide)" in doc.splitlines()[0]) == firstresult


@pytest.mark.parametrize("name", sorted(SPECS))
def test_register_hooks_take_exactly_one_register_callback(name):
    is_register = "(register)" in (inspect.getdoc(SPECS[name]) or "").splitlines()[0]
    assert (argnames(name) == ["register"]) == is_register


def test_no_hook_is_historic_so_building_pipelines_keeps_nothing_on_the_manager():
    historic = {name for name in SPECS if spec_of(name).get("historic")}
    assert historic == set()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_says_it_may_be_async(name):
    doc = " ".join((inspect.getdoc(SPECS[name]) or "").split())
    assert re.search(r"[Mm]ay be ``async", doc), f"{name} does not say it may be async"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_says_what_happens_when_it_raises(name):
    doc = " ".join((inspect.getdoc(SPECS[name]) or "").split())
    assert "raises" in doc, f"{name} does not say what happens when an implementation raises"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_decide_and_collect_hook_says_what_none_means(name):
    doc = " ".join((inspect.getdoc(SPECS[name]) or "").split())
    summary = doc.split(".")[0]
    if "(decide)" in summary or ("(collect)" in summary and "return values are ignored" not in doc):
        assert "None" in doc, f"{name} does not say what None means"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hooks_receive_the_turn_model_type(name):
    signature = inspect.signature(SPECS[name])
    model = signature.parameters.get("model")
    if model is not None:
        assert model.annotation == "TurnModel", f"{name} types model as {model.annotation}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_is_fully_typed(name):
    signature = inspect.signature(SPECS[name])
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"
    assert signature.return_annotation is not inspect.Signature.empty


@pytest.mark.parametrize("name", sorted(SPECS))
def test_non_none_returns_are_documented(name):
    signature = inspect.signature(SPECS[name])
    doc = inspect.getdoc(SPECS[name]) or ""
    if signature.return_annotation not in ("None", None, "Awaitable[None] | None"):
        assert ":return:" in doc, f"{name} does not say what its result means"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_has_a_test_of_its_own(name):
    here = Path(__file__).parent
    others = [p for p in here.glob("test_*.py") if p.name != Path(__file__).name]
    text = "\n".join(p.read_text(encoding="utf-8") for p in others)
    assert re.search(rf"def {name}\(", text), f"no test plugin implements {name}"
