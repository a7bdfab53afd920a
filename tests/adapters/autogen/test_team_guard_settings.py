"""``TeamGuardHandler`` takes the team checks' settings from the core, never its own copy."""

from __future__ import annotations

import inspect

import pytest

from persona_plugins import ConfigError
from persona_plugins.adapters.autogen import TeamGuardHandler
from persona_plugins.guardrails.team import TeamMonitor


def test_the_handler_declares_no_threshold_of_its_own():
    own = set(inspect.signature(TeamGuardHandler).parameters)
    thresholds = set(inspect.signature(TeamMonitor).parameters) - {"task"}

    assert not own & thresholds


def test_settings_reach_the_team_monitor_and_unknown_ones_are_refused():
    handler = TeamGuardHandler(max_share=0.4, repeat_every=2, drift_threshold=0.3)

    assert (handler.monitor.max_share, handler.monitor.repeat_every) == (0.4, 2)
    assert handler.monitor.drift_threshold == 0.3
    assert handler.monitor.max_turns == TeamMonitor().max_turns
    with pytest.raises(ConfigError, match="maxturns"):
        TeamGuardHandler(maxturns=3)
