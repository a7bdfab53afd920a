"""The soak loop of ``benchmarks/bench_faults.py``, 500 turns per configuration, as a regression
test: a seeded fake model that raises, hangs, answers empty, garbage, 1 MB or control characters,
or is cancelled from inside, plus random cancellation from outside. No timing is asserted; every
turn must end as a result, a documented error carrying the conversation, or a cancellation, and
leave nothing running."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_faults.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_faults", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_faults", module)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.mark.parametrize("configuration", list(bench.CONFIGURATIONS))
async def test_500_faulty_turns_end_documented_and_leave_nothing_running(configuration: str):
    tally = await bench.soak_configuration(configuration, 500, seed=7)
    outcomes = tally.outcomes
    assert sum(outcomes.values()) == 500
    assert outcomes["undocumented error"] == 0, dict(tally.undocumented)
    assert outcomes["hang"] == 0
    assert tally.leftovers == 0
    # the faults really happened: some turns failed or were cancelled, most completed
    assert outcomes["completed"] > 250
    assert outcomes["documented error"] + outcomes["cancelled"] > 0
