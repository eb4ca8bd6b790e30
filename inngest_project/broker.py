"""The Redis broker transport, with three changes: acknowledgements stay in the worker, a worker
survives Redis going away, and a channel keeps one Redis client.

kombu's Redis transport emulates AMQP acknowledgements by default: each message a worker takes is
also written to a hash and a sorted set in Redis (a MULTI of two writes), and its acknowledgement
removes it from both (another), so that a message whose worker died reappears after the
visibility timeout. Here each message only says "look at call N" and the PendingCall row is the
record: a call whose worker died is found by its lease, and one whose message was lost by the
sweeper (runs/pending_calls.py), long before any visibility timeout. The emulation was four
Redis commands and a twelfth of a call worker's CPU per message, for nothing. Without it, kombu
keeps the messages a worker holds in memory: a worker that stops cleanly still hands back the
ones it had not started, and a message rejected with requeue still goes back to the queue.

kombu's Redis transport (5.7) crashes the whole worker ("Unrecoverable error: AttributeError:
'NoneType' object has no attribute 'hostname'" or "... 'client'") when the connection drops while
the worker holds unacknowledged messages: closing the dead channel tries to hand them back to
Redis, and a task that finishes afterwards tries to acknowledge its message, both through a
connection that no longer exists. Neither matters here: each message only says "look at call N",
the PendingCall row is the record, a redelivered message for a finished call is discarded by the
claim, and the sweeper re-sends a call whose message was lost. So on a channel whose connection
is gone these become no-ops, and the worker reconnects as it does after any other broker error.

kombu builds a new redis-py client for every publish and every acknowledgement, and a client's
constructor fills a table of about 170 reply callbacks: a quarter of the CPU of sending a task.
A client only borrows connections from its pool and keeps no state of its own between
commands, so the channel keeps one per pool (a new pool, after a reconnection, gets a new one).
"""
from __future__ import annotations

import logging

from kombu.transport import redis, virtual

log = logging.getLogger(__name__)


class QoS(virtual.QoS):
    def _connection_gone(self) -> bool:
        connection = self.channel.connection
        return connection is None or connection.client is None

    def restore_unacked(self):
        if self._connection_gone():
            log.warning("broker connection lost holding %d unacknowledged message(s); the sweeper re-sends their calls",
                        len(self._delivered))
            self._delivered.clear()
            return []
        return super().restore_unacked()

    def reject(self, delivery_tag, requeue=False):
        # A message that came through a connection that is gone cannot go back through it.
        super().reject(delivery_tag, requeue=requeue and not self._connection_gone())


class Channel(redis.Channel):
    ack_emulation = False
    _sync_client = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.QoS = QoS  # kombu puts its own in-memory QoS here when ack_emulation is off

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
