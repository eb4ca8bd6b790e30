"""The flow-control counters' Lua scripts, on real Redis (production) and fakeredis (dev mode)."""
from __future__ import annotations

from typing import Iterator

import fakeredis
import pytest
import redis

from executor.counters import Counters, Slot

NOW = 1_700_000_000_000


@pytest.fixture(params=["redis", "fakeredis"])
def counters(request: pytest.FixtureRequest) -> Iterator[Counters]:
    client = redis.Redis(db=14) if request.param == "redis" else fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client.flushdb()
    yield Counters(client)
    client.flushdb()


def slot(holder: str, limit: int = 2, key: str = "inngest:fc:test") -> Slot:
    return Slot(key, limit, holder, ttl_ms=30_000)


def test_slots_are_taken_up_to_the_limit_and_the_rest_wait_in_line(counters: Counters) -> None:
    assert counters.acquire([slot("a")], "a", 10, NOW) is None
    assert counters.acquire([slot("b")], "b", 11, NOW) is None
    assert counters.acquire([slot("c")], "c", 13, NOW) == slot("c")
    assert counters.acquire([slot("d")], "d", 12, NOW) == slot("d")
    assert counters.line(slot("x"), 10) == ["d", "c"]  # by score, not by arrival


def test_a_released_slot_wakes_the_head_of_the_line_and_no_one_jumps_it(counters: Counters) -> None:
    for member, score in (("a", 1), ("b", 2), ("c", 3), ("d", 4)):
        counters.acquire([slot(member)], member, score, NOW)
    assert counters.release([slot("a")], NOW) == ["c"]
    assert counters.acquire([slot("late")], "late", 9, NOW) == slot("late")  # behind c and d
    assert counters.acquire([slot("d")], "d", 4, NOW) == slot("d")  # behind c
    assert counters.acquire([slot("c")], "c", 3, NOW) is None
    assert counters.line(slot("x"), 10) == ["d", "late"]


def test_a_dead_holders_slot_frees_itself_when_its_lease_runs_out(counters: Counters) -> None:
    counters.acquire([slot("a", limit=1)], "a", 1, NOW)
    assert counters.acquire([slot("b", limit=1)], "b", 2, NOW + 29_000) is not None
    counters.renew([slot("a", limit=1)], NOW + 20_000)  # a live holder keeps its slot
    assert counters.acquire([slot("b", limit=1)], "b", 2, NOW + 31_000) is not None
    assert counters.acquire([slot("b", limit=1)], "b", 2, NOW + 51_000) is None


def test_two_limits_are_taken_together_or_not_at_all(counters: Counters) -> None:
    wide, narrow = "inngest:fc:wide", "inngest:fc:narrow"
    assert counters.acquire([slot("a", 5, wide), slot("a", 1, narrow)], "a", 1, NOW) is None
    assert counters.acquire([slot("b", 5, wide), slot("b", 1, narrow)], "b", 2, NOW) == slot("b", 1, narrow)
    assert counters.in_use(slot("x", 5, wide), NOW) == 1  # b took nothing from the wide limit


def test_rate_limit_refuses_what_comes_too_early(counters: Counters) -> None:
    allowed = [counters.allow_rate("inngest:fc:rl", 1000, 0, NOW + offset) for offset in (0, 10, 999, 1000, 1500)]
    assert allowed == [True, False, False, True, False]


def test_throttle_hands_out_distinct_start_times_after_the_burst(counters: Counters) -> None:
    delays = [counters.reserve_start("inngest:fc:th", 1000, 1000, NOW) for _ in range(5)]
    assert delays == [0, 0, 1000, 2000, 3000]


def test_heads_are_the_waiters_a_free_slot_is_there_for(counters: Counters) -> None:
    counters.acquire([slot("a", limit=1)], "a", 1, NOW)
    counters.acquire([slot("b", limit=1)], "b", 2, NOW)
    assert counters.heads([slot("x", limit=1)], NOW) == []  # a still holds the only slot
    assert counters.heads([slot("x", limit=1)], NOW + 31_000) == ["b"]  # a's lease ran out
