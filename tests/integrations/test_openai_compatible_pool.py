"""``OpenAICompatiblePool``: one chat model over a fleet of OpenAI-compatible servers. Calls spread
over the servers (least in flight first), a server that fails is left to rest while the call is
tried again on another, and the pool says how many calls each server was sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from persona_plugins import Message, ModelCallError
from persona_plugins.integrations.openai_compatible import OpenAICompatiblePool, split_base_urls
from tests.integrations.fake_openai_server import FakeOpenAIServer, reply_for

QUESTION = [Message.user("Is 4 even?")]


@contextlib.contextmanager
def fleet(count: int, latency: float = 0.0) -> Iterator[list[FakeOpenAIServer]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(FakeOpenAIServer(latency)) for _ in range(count)]


def pool_over(servers: list[FakeOpenAIServer], **options) -> OpenAICompatiblePool:
    options.setdefault("backoff_s", 0.01)
    return OpenAICompatiblePool([s.base_url for s in servers], model="fake", **options)


async def test_concurrent_calls_spread_over_every_server_and_are_counted_per_server():
    with fleet(2, latency=0.05) as servers:
        async with pool_over(servers) as pool:
            replies = await asyncio.gather(
                *(pool.complete([Message.user(f"Is {i} even?")]) for i in range(20))
            )
        stats = pool.server_stats()

    assert [r.text for r in replies] == [
        reply_for([{"role": "user", "content": f"Is {i} even?"}]) for i in range(20)
    ]
    assert [s["calls"] for s in stats] == [servers[0].requests, servers[1].requests]
    assert sum(s["calls"] for s in stats) == 20
    assert all(s["calls"] >= 5 for s in stats), stats  # least in flight first: both busy
    assert [s["base_url"] for s in stats] == [servers[0].base_url, servers[1].base_url]


async def test_calls_one_after_another_take_turns():
    with fleet(3) as servers:
        async with pool_over(servers) as pool:
            for _ in range(9):
                await pool.complete(QUESTION)

    assert [s.requests for s in servers] == [3, 3, 3]


@pytest.mark.parametrize("fault", ["status 503", "connection closed"])
async def test_a_failing_server_is_retried_on_another_and_every_call_is_answered(fault):
    with fleet(2) as servers:
        bad, good = servers
        if fault == "status 503":
            bad.fail_status = 503
        else:
            bad.fail_close = True
        async with pool_over([bad, good], backoff_s=5.0) as pool:
            replies = await asyncio.gather(*(pool.complete(QUESTION) for _ in range(10)))
        stats = pool.server_stats()

    assert all(r.text == reply_for([{"role": "user", "content": "Is 4 even?"}]) for r in replies)
    assert good.answered == 10 and stats[1]["answered"] == 10
    assert stats[0]["answered"] == 0 and stats[0]["failed"] == bad.requests >= 1
    # once it failed, the bad server rests (5 s here): the calls that came after went elsewhere
    assert bad.requests < 10


async def test_a_fleet_that_is_all_down_fails_saying_what_each_attempt_met():
    with fleet(2) as servers:
        for server in servers:
            server.fail_status = 503
        async with pool_over(servers, max_retries=3) as pool:
            with pytest.raises(ModelCallError) as raised:
                await pool.complete(QUESTION)

    assert len(raised.value.errors) == 4, "one attempt and three retries"
    assert "HTTP 503" in str(raised.value) and "(after 4 attempts on 2 servers)" in str(
        raised.value
    )
    assert servers[0].requests + servers[1].requests == 4
    assert raised.value.messages == QUESTION


async def test_a_fleet_asking_to_wait_longer_than_max_wait_s_fails_instead_of_waiting():
    with fleet(2) as servers:
        for server in servers:
            server.fail_status, server.retry_after = 429, "3600"
        async with pool_over(servers, max_wait_s=30) as pool:
            with pytest.raises(ModelCallError, match="longer than max_wait_s=30"):
                await asyncio.wait_for(pool.complete(QUESTION), timeout=20)

    assert servers[0].requests + servers[1].requests == 2  # each server once, then no waiting


async def test_an_error_that_retrying_cannot_fix_fails_at_once():
    with fleet(2) as servers:
        servers[0].fail_status = 400
        async with pool_over(servers) as pool:
            with pytest.raises(ModelCallError, match="HTTP 400"):
                await pool.complete(QUESTION)

    assert servers[0].requests + servers[1].requests == 1


async def test_a_server_that_answers_again_is_back_in_the_rotation():
    with fleet(2) as servers:
        servers[0].fail_status = 503
        async with pool_over(servers, backoff_s=0.0) as pool:
            await pool.complete(QUESTION)
            servers[0].fail_status = None
            for _ in range(4):
                await pool.complete(QUESTION)

    assert servers[0].answered >= 1


def test_base_urls_are_split_on_commas_kept_once_and_checked():
    assert split_base_urls("http://a/v1/, http://b/v1,,http://a/v1") == [
        "http://a/v1",
        "http://b/v1",
    ]
    with pytest.raises(ValueError, match="at least one base URL"):
        OpenAICompatiblePool([" ", ""])
    with pytest.raises(ValueError, match="must start with http"):
        OpenAICompatiblePool(["http://a/v1", "b:8000/v1"])
