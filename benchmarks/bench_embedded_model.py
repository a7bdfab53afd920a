"""What the embedded model's CPU safety costs: the one-time probe, and extra buffer types off vs on.

``LlamaCppChatModel`` loads models with llama.cpp's extra buffer types off (the AMX path faults on
VMs that advertise AMX without enabling it) and runs a probe in a child process before its first
load on a machine. This measures, in one run on one machine:

- the probe: a cold run (child process, model load, two tokens) and a cached verdict;
- generation speed with extra buffer types off (the default) and on, interleaved, same prompts.

Usage::

    .venv/bin/python benchmarks/bench_embedded_model.py [--rounds 5] [--tokens 64] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from results_md import machine_note, update_section

from persona_plugins import Message
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel, _cpu, default_model_path

PROMPTS = [
    "Describe a lighthouse at night in three sentences.",
    "Explain why the sky is blue to a ten-year-old.",
    "List four things to pack for a day at the beach.",
]


def _tokens_per_second(model: LlamaCppChatModel, tokens: int) -> float:
    out = 0
    started = time.perf_counter()
    for prompt in PROMPTS:
        completion = model.complete_blocking(
            [Message.user(prompt)], max_tokens=tokens, temperature=0.0
        )
        out += completion.usage.output_tokens
    return out / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="2 rounds, RESULTS.md untouched")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds

    path = default_model_path()
    with tempfile.TemporaryDirectory() as cache:
        os.environ[_cpu.CACHE_ENV] = cache
        model = LlamaCppChatModel(n_threads=None)
        started = time.perf_counter()
        cold = _cpu.run_probe(path, model.load_kwargs(), False)
        cold_s = time.perf_counter() - started
        _cpu.ensure_runs_here(path, model.load_kwargs(), False)  # writes the verdict
        started = time.perf_counter()
        _cpu.ensure_runs_here(path, model.load_kwargs(), False)
        cached_s = time.perf_counter() - started

        off = LlamaCppChatModel()
        on = LlamaCppChatModel(extra_buffers=True)
        off.load()
        on.load()
        _tokens_per_second(off, 8)  # warm-up
        _tokens_per_second(on, 8)
        speeds: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(rounds):
            speeds["off"].append(_tokens_per_second(off, args.tokens))
            speeds["on"].append(_tokens_per_second(on, args.tokens))

    off_tps = statistics.median(speeds["off"])
    on_tps = statistics.median(speeds["on"])
    body = f"""Command: `.venv/bin/python benchmarks/bench_embedded_model.py --rounds {rounds} \
--tokens {args.tokens}`

Machine: {machine_note()}, CPU {_cpu.cpu_name()}, llama-cpp-python {_cpu.llama_cpp_version()}; \
SmolLM2-135M-Instruct Q4_1, temperature 0, {len(PROMPTS)} prompts x {args.tokens} tokens per \
round, {rounds} interleaved rounds (median).

| measurement | value |
|---|---:|
| CPU probe, cold (child process: load + two tokens), once per build, CPU and model | \
{cold_s * 1000:.0f} ms ({"passed" if cold and cold.ok else "no verdict"}) |
| CPU probe, cached verdict (every later load) | {cached_s * 1000:.2f} ms |
| generation, extra buffer types off (the default) | {off_tps:.1f} tokens/s |
| generation, extra buffer types on (`extra_buffers=True`) | {on_tps:.1f} tokens/s |
| off / on | {off_tps / on_tps:.2f}x |
"""
    print(body)
    if not args.quick:
        update_section("Embedded model: CPU probe and extra buffer types", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
