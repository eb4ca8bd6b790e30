"""The Redis broker transport, with two changes: a worker survives Redis going away, and a
channel keeps one Redis client.

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


class QoS(redis.QoS):
    def _connection_gone(self) -> bool:
        connection = self.channel.connection
        return connection is None or connection.client is None

    def restore_unacked(self, client=None):
        if client is None and self._connection_gone():
            log.warning("broker connection lost holding %d unacknowledged message(s); the sweeper re-sends their calls",
                        len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)

    def ack(self, delivery_tag):
        if self._connection_gone():
            # The message came through a connection that is gone; Redis forgets it with the
            # connection's data, or redelivers it after the visibility timeout (a no-op by then).
            virtual.QoS.ack(self, delivery_tag)
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if self._connection_gone():
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue=requeue)


class Channel(redis.Channel):
    QoS = QoS
    _sync_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
