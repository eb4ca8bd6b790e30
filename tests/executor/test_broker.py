"""The broker transport (inngest_project/broker.py) on a real Redis: a message a worker holds
stays in the worker, not in Redis, and still goes back to the queue when it is rejected with
requeue or when its channel closes cleanly before it was acknowledged."""
from __future__ import annotations

from typing import Iterator

import pytest
import redis
from celery.fixups.django import DjangoWorkerFixup
from django.conf import settings
from kombu import Connection, Exchange, Queue

from inngest_project.celery import app

from tests.stacks import stack_redis_url

URL = stack_redis_url(12)
QUEUE = Queue("broker-test", Exchange("broker-test"), "broker-test")


@pytest.fixture
def store() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(URL)
    client.flushdb()
    yield client
    client.flushdb()


def _connect() -> Connection:
    return Connection(URL, transport="inngest_project.broker:Transport")


def _publish(connection: Connection, payload: dict) -> None:
    connection.Producer().publish(payload, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE])


def test_a_held_message_is_not_written_back_to_redis(store: redis.Redis) -> None:
    with _connect() as connection:
        _publish(connection, {"call": 1})
        message = QUEUE(connection.default_channel).get(no_ack=False)
        assert message is not None and message.payload == {"call": 1}
        # kombu's default emulation would hold a copy in the `unacked` hash and its index.
        assert store.hlen("unacked") == 0
        assert store.zcard("unacked_index") == 0
        assert store.llen(QUEUE.name) == 0
        message.ack()
        assert store.llen(QUEUE.name) == 0
        assert store.hlen("unacked") == 0


def test_a_message_rejected_with_requeue_goes_back_to_the_queue(store: redis.Redis) -> None:
    with _connect() as connection:
        _publish(connection, {"call": 2})
        message = QUEUE(connection.default_channel).get(no_ack=False)
        message.reject(requeue=True)
        assert store.llen(QUEUE.name) == 1
        again = QUEUE(connection.default_channel).get(no_ack=False)
        assert again.payload == {"call": 2}
        again.ack()


def test_a_channel_closed_cleanly_hands_back_what_it_had_not_acknowledged(store: redis.Redis) -> None:
    with _connect() as connection:
        _publish(connection, {"call": 3})
        _publish(connection, {"call": 4})
        held = QUEUE(connection.default_channel).get(no_ack=False)
        assert held is not None
        assert store.llen(QUEUE.name) == 1
    # The connection (and its channel) closed without acknowledging `held`.
    assert store.llen(QUEUE.name) == 2
    with _connect() as connection:
        payloads = []
        while (message := QUEUE(connection.default_channel).get(no_ack=False)) is not None:
            payloads.append(message.payload)
            message.ack()
    assert sorted(p["call"] for p in payloads) == [3, 4]


def test_celery_reads_the_django_settings_the_worker_relies_on() -> None:
    assert app.conf.task_default_queue == settings.CELERY_TASK_DEFAULT_QUEUE
    assert app.conf.task_routes == settings.CELERY_TASK_ROUTES
    assert app.conf.task_acks_late is True and app.conf.worker_prefetch_multiplier == 1
    # Without it the fixup closes the database connection around every task.
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX == 1000
