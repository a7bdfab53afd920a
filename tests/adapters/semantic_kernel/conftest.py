"""Fixtures of the Semantic Kernel adapter tests: the embedded model, capped at a few dozen tokens
a call, behind real SK services."""

from __future__ import annotations

import pluggy
import pytest

from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

from .doubles import FlagDetector, RecordingChatCompletion, RecordingModel

MAX_TOKENS = 48


@pytest.fixture(scope="session")
def bounded_model() -> LlamaCppChatModel:
    """The embedded SmolLM2 (real inference), capped at a few dozen tokens a call."""
    model = LlamaCppChatModel(generation={"max_tokens": MAX_TOKENS})
    model.load()
    return model


@pytest.fixture
def recording_model(bounded_model: LlamaCppChatModel) -> RecordingModel:
    """The bounded embedded model, keeping the messages of every call."""
    return RecordingModel(bounded_model)


@pytest.fixture
def service(recording_model: RecordingModel) -> RecordingChatCompletion:
    """An SK chat service on the embedded model that keeps every history it receives."""
    return RecordingChatCompletion(recording_model)


@pytest.fixture
def detector() -> FlagDetector:
    """A guardrail detector that flags every response (``test_detector``)."""
    return FlagDetector()


@pytest.fixture
def guarded_manager(
    plugin_manager: pluggy.PluginManager, detector: FlagDetector
) -> pluggy.PluginManager:
    """A fresh plugin manager whose only guardrail detector is :func:`detector`.

    Built-in detectors are unregistered, so what the tests see does not depend on them.
    """
    detector_hooks = (plugin_manager.hook.register_detectors, plugin_manager.hook.check_response)
    for impl in [impl for hook in detector_hooks for impl in hook.get_hookimpls()]:
        if plugin_manager.is_registered(impl.plugin):
            plugin_manager.unregister(impl.plugin)
    plugin_manager.register(detector, name="test_detector")
    return plugin_manager
