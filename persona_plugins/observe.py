"""Stage 7, observe: every ``on_turn_complete`` implementation sees the finished turn.

Observers are called last, with the :class:`~persona_plugins.TurnResult` the caller gets (its
``errors`` as they stand); ``async`` observers are awaited, concurrently. An observer that raises is
recorded in the result's ``errors`` and never changes the answer. With no observer registered and
nothing recording the stage (no span, no measurement), there is nothing to do and nothing is run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from persona_plugins.results import TurnResult

if TYPE_CHECKING:
    from persona_plugins.stages import TurnContext

__all__ = ["observe_turn"]


async def observe_turn(turn: TurnContext, result: TurnResult) -> None:
    """Stage 7 of a turn: hand ``result`` to the observers, then record their failures on it."""
    result.errors = list(turn.errors)  # observers see the turn's recovered failures
    if turn.hooks.implementations("on_turn_complete") == () and not turn.observed():
        return  # no observer, and no span or measurement to make
    await turn.stage(
        "on_turn_complete",
        lambda span: turn.hooks.collect("on_turn_complete", result=result, config=turn.config),
    )
    result.errors = list(turn.errors)
