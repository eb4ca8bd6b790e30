"""The shared flow-control counters: concurrency slots and GCRA limiters, changed atomically in Redis.

Many worker processes on many machines take and give back slots at once, so every change is one
Lua script (Redis runs each script atomically). Dev mode has no Redis: the same scripts run on an
in-process fakeredis server, which serialises commands with a lock; dev mode is one process.

Slots. A concurrency limit is a pair of sorted sets: holders (member = who holds a slot, score =
when the hold expires, so a dead worker's slot frees itself with its lease) and waiting (member
= a parked call, score = its place in line: run creation time minus priority). A call may take
a slot only if one is free for it counting the waiters ahead of it, so runs start in order.

GCRA. Rate limits and throttles keep one "theoretical arrival time" per key. A rate limit refuses
what comes too early; a throttle hands out the next start time instead, so queued runs get
distinct start times and never stampede. A token is taken inside the database transaction that
admits its run, so it stays unconfirmed, recorded with its spender (the event, batch or cron tick
the run is for), until that transaction commits: a retried admission gets the answer it had
without taking a second token, and a token whose transaction never commits comes back by itself
once its confirmation window has passed (the next call on the key gives it back).

Redis holds counters only. PostgreSQL keeps every run, call and reason; a Redis that loses its
data loses holds and places in line, and the parked calls' rows put them back (§ flow_control).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from core.redis_client import new_redis_client

PREFIX = "inngest:fc:"  # core/metrics.py keeps its hash under the same prefix
PER_RUN_HOLDER = "run:"  # holders of run-level slots are "run:<run id>"; call-level ones a call id
WAITING_TTL_MS = 86_400_000  # a line nobody joined for a day is dropped; parked rows rejoin it

_ACQUIRE = """
local now, member, score = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local n = #KEYS / 2
local blocked = 0
for i = 1, n do
  local holders, waiting = KEYS[2*i-1], KEYS[2*i]
  local limit, holder, expires = tonumber(ARGV[3*i+1]), ARGV[3*i+2], tonumber(ARGV[3*i+3])
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
  if redis.call('ZSCORE', holders, holder) then
    redis.call('ZADD', holders, 'XX', expires, holder)
  else
    local free = limit - redis.call('ZCARD', holders)
    local ahead = 0
    if free > 0 and redis.call('EXISTS', waiting) == 1 then
      local added = redis.call('ZADD', waiting, 'NX', score, member)
      ahead = redis.call('ZRANK', waiting, member)
      if added == 1 then redis.call('ZREM', waiting, member) end
    end
    if free <= ahead then
      blocked = i
      break
    end
  end
end
if blocked > 0 then
  redis.call('ZADD', KEYS[2*blocked], 'NX', score, member)
  redis.call('PEXPIRE', KEYS[2*blocked], tonumber(ARGV[#ARGV]))
  return blocked
end
for i = 1, n do
  local holders, expires = KEYS[2*i-1], tonumber(ARGV[3*i+3])
  redis.call('ZADD', holders, expires, ARGV[3*i+2])
  if redis.call('PTTL', holders) < expires - now then
    redis.call('PEXPIRE', holders, expires - now + 1000)
  end
  redis.call('ZREM', KEYS[2*i], member)
end
return 0
"""

_RELEASE = """
local now = tonumber(ARGV[1])
local wake = {}
for i = 1, #KEYS / 2 do
  local holders, waiting = KEYS[2*i-1], KEYS[2*i]
  redis.call('ZREM', holders, ARGV[2*i])
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
  local free = tonumber(ARGV[2*i+1]) - redis.call('ZCARD', holders)
  if free > 0 then
    for _, m in ipairs(redis.call('ZRANGE', waiting, 0, free - 1)) do table.insert(wake, m) end
  end
end
return wake
"""

_RENEW = """
for i = 1, #KEYS do
  local expires = tonumber(ARGV[2*i])
  redis.call('ZADD', KEYS[i], 'XX', expires, ARGV[2*i-1])
  if redis.call('PTTL', KEYS[i]) < expires - tonumber(ARGV[#ARGV]) then
    redis.call('PEXPIRE', KEYS[i], expires - tonumber(ARGV[#ARGV]) + 1000)
  end
end
return 0
"""

# KEYS: the theoretical arrival time (TAT), the spends still unconfirmed (hash: spender → the
# answer it got), their deadlines (sorted set: spender → when its token comes back).
# ARGV: now, emission interval, tolerance (burst × emission), all in ms; mode 1 = throttle;
# the spender ("" = none); how long a spend may stay unconfirmed, in ms.
# Rate limit: 1 if allowed, 0 if refused. Throttle: how many ms until this start may happen.
_GCRA = """
local now, emission, tolerance, is_throttle = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local spender, window = ARGV[5], tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, gone in ipairs(lapsed) do redis.call('HDEL', KEYS[2], gone) end
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  tat = tat - emission * #lapsed
end
if spender ~= '' then
  local prior = redis.call('HGET', KEYS[2], spender)
  if prior then
    redis.call('ZADD', KEYS[3], now + window, spender)
    if is_throttle then return math.max(tonumber(prior) - now, 0) end
    return 1
  end
end
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > 0 and not is_throttle then
  if #lapsed > 0 then redis.call('SET', KEYS[1], tat, 'PX', tat - now + 1000) end
  return 0
end
tat = tat + emission
redis.call('SET', KEYS[1], tat, 'PX', tat - now + 1000)
if spender ~= '' then
  redis.call('HSET', KEYS[2], spender, now + wait)
  redis.call('ZADD', KEYS[3], now + window, spender)
  local ttl = math.max(tat - now, window) + 1000
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if is_throttle then return wait end
return 1
"""

# A spend whose run was not admitted after all (a singleton skipped it): its token comes back.
# KEYS as _GCRA; ARGV: now, emission, spender.
_REFUND = """
local now, emission = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('HDEL', KEYS[2], ARGV[3]) == 0 then return 0 end
redis.call('ZREM', KEYS[3], ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) - emission
if tat > now then redis.call('SET', KEYS[1], tat, 'PX', tat - now + 1000) else redis.call('DEL', KEYS[1]) end
return 1
"""


@dataclass(frozen=True)
class Spend:
    """A rate-limit or throttle token taken for one run, unconfirmed until its transaction commits."""

    key: str
    spender: str  # stable across retries of the same admission (an event, a batch, a cron tick)
    emission_ms: int

    @property
    def keys(self) -> list[str]:
        return [self.key, f"{self.key}:s", f"{self.key}:u"]


@dataclass(frozen=True)
class Slot:
    """One concurrency limit a call must fit under: its Redis key, size, and who holds it."""

    key: str
    limit: int
    holder: str
    ttl_ms: int
    label: str = ""  # the limit in words, for the reason a parked run shows; not sent to Redis

    @property
    def is_per_run(self) -> bool:
        """Held by the run from its start to its end (`concurrency.fn`), not by one call."""
        return self.holder.startswith(PER_RUN_HOLDER)

    @property
    def holders_key(self) -> str:
        return f"{self.key}:h"

    @property
    def waiting_key(self) -> str:
        return f"{self.key}:w"


class Counters:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._gcra = client.register_script(_GCRA)
        self._refund = client.register_script(_REFUND)

    def acquire(self, slots: list[Slot], member: str, score: int, now_ms: int) -> Slot | None:
        """Take every slot or none. Returns the slot that is full (the call then waits in its line)."""
        keys = [k for slot in slots for k in (slot.holders_key, slot.waiting_key)]
        args: list[Any] = [now_ms, member, score]
        for slot in slots:
            args += [slot.limit, slot.holder, now_ms + slot.ttl_ms]
        args.append(WAITING_TTL_MS)
        blocked = int(self._acquire(keys=keys, args=args))
        return slots[blocked - 1] if blocked else None

    def release(self, slots: list[Slot], now_ms: int) -> list[str]:
        """Give the slots back; returns the waiters at the head of each line, to be woken."""
        if not slots:
            return []
        keys = [k for slot in slots for k in (slot.holders_key, slot.waiting_key)]
        args: list[Any] = [now_ms]
        for slot in slots:
            args += [slot.holder, slot.limit]
        return list(dict.fromkeys(_text(m) for m in self._release(keys=keys, args=args)))

    def heads(self, slots: list[Slot], now_ms: int) -> list[str]:
        """The waiters a free slot is there for right now (the release script, releasing nothing)."""
        return self.release([replace(slot, holder="") for slot in slots], now_ms)

    def renew(self, slots: list[Slot], now_ms: int) -> None:
        if not slots:
            return
        args: list[Any] = []
        for slot in slots:
            args += [slot.holder, now_ms + slot.ttl_ms]
        args.append(now_ms)
        self._renew(keys=[slot.holders_key for slot in slots], args=args)

    def leave_line(self, slots: list[Slot], members: list[str]) -> None:
        """Drop waiters that no longer exist (their run ended while they waited)."""
        if members:
            pipe = self._client.pipeline(transaction=False)
            for slot in slots:
                pipe.zrem(slot.waiting_key, *members)
            pipe.execute()

    def line(self, slot: Slot, count: int) -> list[str]:
        return [_text(m) for m in self._client.zrange(slot.waiting_key, 0, count - 1)]

    def in_use(self, slot: Slot, now_ms: int) -> int:
        return int(self._client.zcount(slot.holders_key, now_ms, "+inf"))

    def allow_rate(self, spend: Spend, tolerance_ms: int, now_ms: int, window_ms: int) -> bool:
        """Take a rate-limit token for `spend.spender`, or refuse. A spender that already holds an
        unconfirmed token (its admission is being retried) is allowed without taking another."""
        return bool(int(self._gcra(keys=spend.keys, args=[now_ms, spend.emission_ms, tolerance_ms, 0, spend.spender, window_ms])))

    def reserve_start(self, spend: Spend, tolerance_ms: int, now_ms: int, window_ms: int) -> int:
        """The throttle's next start time for this key, as ms from now (0: start at once); a
        retried admission gets the start time it had."""
        return int(self._gcra(keys=spend.keys, args=[now_ms, spend.emission_ms, tolerance_ms, 1, spend.spender, window_ms]))

    def confirm(self, spends: list[Spend]) -> None:
        """The spenders' transaction committed: their tokens stay spent."""
        if spends:
            pipe = self._client.pipeline(transaction=False)
            for spend in spends:
                pipe.hdel(spend.keys[1], spend.spender)
                pipe.zrem(spend.keys[2], spend.spender)
            pipe.execute()

    def refund(self, spends: list[Spend], now_ms: int) -> None:
        """Give the tokens back (each at most once; a confirmed one is not given back)."""
        for spend in spends:
            self._refund(keys=spend.keys, args=[now_ms, spend.emission_ms, spend.spender])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_lock = threading.Lock()
_counters: Counters | None = None


def counters() -> Counters:
    """This process's Counters: Redis when REDIS_URL is set, an in-process fakeredis otherwise."""
    global _counters
    if _counters is None:
        with _lock:
            if _counters is None:
                _counters = Counters(new_redis_client())
    return _counters
