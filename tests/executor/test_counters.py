"""The flow-control counters' Lua scripts, on real Redis (production) and fakeredis (dev mode)."""
from __future__ import annotations

from typing import Iterator

import fakeredis
import pytest
import redis

from runs.flow_control.counters import Counters, Slot, Spend
from tests.stacks import stack_redis_url

NOW = 1_700_000_000_000


@pytest.fixture(params=["redis", "fakeredis"])
def counters(request: pytest.FixtureRequest) -> Iterator[Counters]:
    client = redis.Redis.from_url(stack_redis_url(14)) if request.param == "redis" else fakeredis.FakeRedis(server=fakeredis.FakeServer())
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


WINDOW = 60_000


def spend(spender: str, key: str = "inngest:fc:rl", emission: int = 1000) -> Spend:
    return Spend(key, spender, emission)


def test_rate_limit_refuses_what_comes_too_early(counters: Counters) -> None:
    allowed = [counters.allow_rate(spend(f"e{offset}"), 0, NOW + offset, WINDOW) for offset in (0, 10, 999, 1000, 1500)]
    assert allowed == [True, False, False, True, False]


def test_throttle_hands_out_distinct_start_times_after_the_burst(counters: Counters) -> None:
    delays = [counters.reserve_start(spend(f"e{i}", "inngest:fc:th"), 1000, NOW, WINDOW) for i in range(5)]
    assert delays == [0, 0, 1000, 2000, 3000]


def test_a_retried_admission_gets_its_answer_again_and_takes_no_second_token(counters: Counters) -> None:
    limit = [spend(s, emission=1000) for s in ("a", "b", "c")]
    assert [counters.allow_rate(s, 1000, NOW, WINDOW) for s in limit[:2]] == [True, True]  # burst of one
    assert counters.allow_rate(limit[0], 1000, NOW + 5, WINDOW)  # "a" again (its transaction retried)
    assert not counters.allow_rate(limit[2], 1000, NOW + 5, WINDOW)  # two tokens were taken, not three
    throttled = [spend(s, "inngest:fc:th") for s in ("a", "b", "c")]
    assert [counters.reserve_start(s, 0, NOW, WINDOW) for s in throttled] == [0, 1000, 2000]
    assert counters.reserve_start(throttled[1], 0, NOW + 400, WINDOW) == 600  # the same start time
    assert counters.reserve_start(spend("d", "inngest:fc:th"), 0, NOW + 400, WINDOW) == 2600


def test_an_unconfirmed_token_comes_back_after_the_window_and_a_confirmed_one_does_not(counters: Counters) -> None:
    emission = 100_000  # one per 100 s: longer than the window
    a, b, c = (spend(s, emission=emission) for s in "abc")
    assert counters.allow_rate(a, 0, NOW, WINDOW)
    counters.confirm([a])
    assert not counters.allow_rate(c, 0, NOW + WINDOW + 1, WINDOW)  # past a's window: confirmed, it stays spent
    assert counters.allow_rate(b, 0, NOW + emission, WINDOW)  # b's transaction never commits
    assert not counters.allow_rate(c, 0, NOW + emission + 1, WINDOW)
    assert counters.allow_rate(c, 0, NOW + emission + WINDOW + 1, WINDOW)  # b's token came back


def test_refund_gives_a_token_back_once_and_never_a_confirmed_one(counters: Counters) -> None:
    spends = [spend(f"s{i}", emission=10_000) for i in range(7)]
    assert [counters.allow_rate(s, 30_000, NOW, WINDOW) for s in spends[:5]] == [True] * 4 + [False]  # a burst of 3
    counters.confirm([spends[0]])
    counters.refund([spends[0], spends[1], spends[1]], NOW)  # s0 was confirmed; s1 comes back once
    assert [counters.allow_rate(s, 30_000, NOW, WINDOW) for s in spends[5:]] == [True, False]


def test_heads_are_the_waiters_a_free_slot_is_there_for(counters: Counters) -> None:
    counters.acquire([slot("a", limit=1)], "a", 1, NOW)
    counters.acquire([slot("b", limit=1)], "b", 2, NOW)
    assert counters.heads([slot("x", limit=1)], NOW) == []  # a still holds the only slot
    assert counters.heads([slot("x", limit=1)], NOW + 31_000) == ["b"]  # a's lease ran out
