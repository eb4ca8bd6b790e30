"""Reading flow-control configuration: every accepted shape, and clear errors at sync."""
from __future__ import annotations

from datetime import timedelta

import pytest

from functions.flow_config import ConcurrencyLimit, FlowConfigError, clamp_priority, read_flow_config


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3, (ConcurrencyLimit(3),)),
        ({"limit": 2, "key": "event.data.user"}, (ConcurrencyLimit(2, "event.data.user"),)),
        ([{"limit": 1, "key": "event.data.a", "scope": "Env"}, {"limit": 5}],
         (ConcurrencyLimit(1, "event.data.a", "env"), ConcurrencyLimit(5))),
        ({"fn": [{"limit": 4}], "step": [{"limit": 2, "key": "event.data.a"}]},
         (ConcurrencyLimit(2, "event.data.a"), ConcurrencyLimit(4, is_per_run=True))),
        ([], ()),
        (None, ()),
    ],
)
def test_every_concurrency_shape_is_read(raw, expected) -> None:
    assert read_flow_config({"concurrency": raw}).concurrency == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"concurrency": [{"limit": 1}, {"limit": 2}, {"limit": 3}]}, "at most 2 limits"),
        ({"concurrency": {"limit": 1, "scope": "account"}}, "needs a key"),
        ({"concurrency": {"limit": 1, "scope": "world"}}, "scope must be one of"),
        ({"concurrency": {"limit": "2"}}, "positive whole number"),
        ({"rateLimit": {"limit": 1, "period": "48h"}}, "between 1s and 24h"),
        ({"throttle": {"limit": 1, "period": "soon"}}, "invalid duration"),
        ({"debounce": {"period": "10d"}}, "between 1s and 7d"),
        ({"batchEvents": {"maxSize": 5, "timeout": "0s"}}, "at least 1s"),
        ({"batchEvents": {"maxSize": 5, "timeout": "5s"}, "debounce": {"period": "5s"}}, "batchEvents cannot be combined with debounce"),
        ({"singleton": {"mode": "queue"}}, "skip or cancel"),
        ({"priority": {"run": "event.data.("}}, "priority.run"),
    ],
)
def test_bad_flow_control_is_refused_with_a_clear_error(config, message) -> None:
    with pytest.raises(FlowConfigError, match=message.replace("(", r"\(")):
        read_flow_config(config)


def test_rate_limit_burst_is_a_tenth_of_the_limit_and_idempotency_overrides_it() -> None:
    flow = read_flow_config({"rateLimit": {"limit": 25, "period": "1m"}})
    assert (flow.rate_limit.burst, flow.rate_limit.period) == (2, timedelta(minutes=1))
    flow = read_flow_config({"rateLimit": {"limit": 25, "period": "1m"}, "idempotency": "event.data.id"})
    assert flow.rate_limit is None and flow.idempotency == "event.data.id"


def test_throttle_limit_zero_means_one_and_batch_of_one_is_no_batching() -> None:
    flow = read_flow_config({"throttle": {"limit": 0, "period": "10s"}, "batchEvents": {"maxSize": 1, "timeout": "1s"}})
    assert flow.throttle.limit == 1 and flow.throttle.burst == 0
    assert flow.batch is None


@pytest.mark.parametrize(("value", "expected"), [(120, 120), (10**6, 43_200), (-10**6, -43_200), ("9", 0), (True, 0), (2.9, 2)])
def test_priority_is_clamped_to_twelve_hours(value, expected) -> None:
    assert clamp_priority(value) == expected
