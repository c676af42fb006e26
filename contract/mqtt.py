"""The one module that drives paho-mqtt.

Everything else talks to :class:`MqttLink`: publish with an acknowledgement callback, subscribe
to filters that are renewed on every (re)connect, and receive messages as plain
:class:`InboundMessage` values through a sink the caller provides. paho's callbacks only
translate and hand over; the work (decoding, buffering, detection) happens in the caller's
threads.

Reconnects are paho's: un-acknowledged QoS 1 publications stay in paho's queue and are resent
(with DUP set) after the connection is back, so an acknowledgement can arrive for a message
published before the outage.

A broker that cannot be reached and one that refuses this client's identity (a wrong password,
an unknown certificate, an ACL that denies the will) are both logged at every attempt with the
reason, and the link keeps trying. A refusal is also kept (:attr:`MqttLink.refusal`,
:meth:`MqttLink.wait_connected` raises it), so a caller for whom retrying the same credentials
is pointless can stop with one clear line: the worker and the simulator do; an edge device,
which must never give up, does not.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from contract.errors import QloopError

log = logging.getLogger(__name__)

# CONNACK reason codes (MQTT 5 numbering; paho maps 3.1.1's return codes onto them) that say
# "not you", as opposed to "not now": client id not valid, bad user name or password, not
# authorized, banned, bad authentication method
_IDENTITY_REFUSED = frozenset({0x85, 0x86, 0x87, 0x8A, 0x8C})


class BrokerError(QloopError, ConnectionError):
    """The broker cannot be reached or will not take this client."""


class BrokerRefused(BrokerError):
    """The broker refused this client's identity: its username, password or certificate."""


class InboundMessage(NamedTuple):
    """A received message. A named tuple, not a frozen dataclass: one is made per message in
    each process it passes, and a frozen dataclass took three times as long to make (0.9 µs
    against 0.3)."""

    topic: str
    payload: bytes
    retain: bool
    dup: bool
    mid: int = 0
    qos: int = 0
    generation: int = 0  # which connection delivered it (acks only go back on that one)


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None  # CA file; enables TLS
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False

    @classmethod
    def parse(cls, spec: str, **kw: object) -> BrokerAddress:
        """``host:port`` or ``host`` (port 1883)."""
        host, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "1883")
        if not host:
            raise ValueError(f"broker address {spec!r} is not HOST:PORT")
        try:
            p = int(port)
        except ValueError:
            raise ValueError(f"broker address {spec!r}: port {port!r} is not a number") from None
        return cls(host=host, port=p, **kw)  # type: ignore[arg-type]


def _noop() -> None:
    pass


class MqttLink:
    """One MQTT connection (MQTT 3.1.1) running paho's network loop in a background thread.

    ``on_message`` is called on paho's thread with an :class:`InboundMessage`; it must only
    enqueue. ``on_connect`` (optional) is called after every successful (re)connect, after the
    subscriptions were renewed: the edge uses it to send birth and status. ``on_subscribed``
    (optional) runs, on paho's thread, when the broker acknowledged every subscription of a
    connection, and ``on_refused`` when it refused this client's identity: a link that runs in
    another process (``contract/mqtt_process.py``) forwards them.
    """

    def __init__(
        self,
        client_id: str,
        broker: BrokerAddress,
        *,
        clean_session: bool = True,
        will: Will | None = None,
        subscriptions: Sequence[str] = (),
        on_message: Callable[[InboundMessage], None] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        on_subscribed: Callable[[], None] | None = None,
        on_refused: Callable[[BrokerRefused], None] | None = None,
        keepalive: int = 30,
        max_inflight: int = 200,
        manual_ack: bool = False,
    ) -> None:
        self.client_id = client_id
        self.broker = broker
        self._subscriptions = list(subscriptions)
        self._sink = on_message
        self._user_on_connect = on_connect
        self._user_on_disconnect = on_disconnect
        self._user_on_subscribed = on_subscribed
        self._user_on_refused = on_refused
        self._keepalive = keepalive
        self._connected = threading.Event()
        self._changed = threading.Condition()  # notified on every connect and refusal
        self.refusal: BrokerRefused | None = None  # the broker's latest "not you", until a connect
        self._subscribed = threading.Event()  # every filter acknowledged (SUBACK) on this link
        self._pending_subs: set[int] = set()
        self._lock = threading.Lock()  # guards the ack callbacks; never held while in paho
        self._ack_callbacks: dict[int, Callable[[], None]] = {}
        self._early_acks: set[int] = set()
        self._generation = 0
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
            manual_ack=manual_ack,
        )
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(min_delay=1, max_delay=10)
        if will is not None:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        if broker.username is not None:
            c.username_pw_set(broker.username, broker.password)
        if broker.tls_ca is not None:
            c.tls_set(
                ca_certs=broker.tls_ca,
                certfile=broker.tls_cert,
                keyfile=broker.tls_key,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            c.tls_insecure_set(broker.tls_insecure)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self._client = c

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting until :meth:`close`."""
        self._client.connect_async(self.broker.host, self.broker.port, self._keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Until connected (True) or ``timeout`` (False); raises :class:`BrokerRefused` if the
        broker refused this client's identity meanwhile."""
        with self._changed:
            self._changed.wait_for(lambda: self._connected.is_set() or self.refusal, timeout)
            if self.refusal is not None and not self._connected.is_set():
                raise self.refusal
            return self._connected.is_set()

    def wait_refused(self, timeout: float | None = None) -> BrokerRefused | None:
        """Until the broker refuses this client's identity (on any attempt), or ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self.refusal is not None, timeout)
            return self.refusal

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self) -> None:
        """Disconnect cleanly (no will is sent) and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would (the broker sends the will)."""
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._client.loop_stop()
        self._connected.clear()

    # --- publish ---------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        on_ack: Callable[[], None] | None = None,
    ) -> None:
        """Queue a publication; ``on_ack`` runs on paho's thread once the broker acknowledged it
        (PUBACK for QoS 1; for QoS 0, once written)."""
        # paho's publish() is called without holding self._lock: paho calls on_publish while
        # holding its own message lock, so holding ours around publish() would invert the lock
        # order and deadlock (the caller's thread against paho's network thread). An ack that
        # comes before the callback is registered waits in _early_acks.
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectionError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        with self._lock:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                run_now = on_ack is not None
            else:
                self._ack_callbacks[info.mid] = on_ack or _noop
                run_now = False
        if run_now and on_ack is not None:
            on_ack()

    def pending_acks(self) -> int:
        with self._lock:
            return len(self._ack_callbacks)

    # --- paho callbacks: translate and hand over only ----------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.warning(
                "%s: the broker at %s:%d refused the connection (%s); retrying",
                self.client_id,
                self.broker.host,
                self.broker.port,
                reason_code,
            )
            if reason_code.value in _IDENTITY_REFUSED:
                with self._changed:
                    refusal = self.refusal = BrokerRefused(
                        f"the broker at {self.broker.host}:{self.broker.port} refused"
                        f" {self.client_id}"
                        + (f" (user {self.broker.username})" if self.broker.username else "")
                        + f": {reason_code}"
                    )
                    self._changed.notify_all()
                if self._user_on_refused is not None:
                    self._user_on_refused(refusal)
            return
        self._generation += 1
        with self._lock:
            self._pending_subs.clear()
            for f in self._subscriptions:
                rc, mid = client.subscribe(f, qos=1)
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._pending_subs.add(mid)
            subscribed = not self._pending_subs
        if subscribed:
            self._all_subscribed()
        with self._changed:
            self.refusal = None
            self._connected.set()
            self._changed.notify_all()
        if self._user_on_connect is not None:
            self._user_on_connect()

    def _on_connect_fail(self, client, userdata) -> None:  # noqa: ANN001
        # paho calls this inside its ``except OSError`` around the (re)connect, so the error
        # that says why (refused, unreachable, name unknown) is the one being handled
        reason = sys.exc_info()[1] or "connection failed"
        log.warning(
            "%s: cannot reach the broker at %s:%d (%s); retrying",
            self.client_id,
            self.broker.host,
            self.broker.port,
            reason,
        )

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        if any(rc.is_failure for rc in reason_codes):
            log.warning("%s: broker refused a subscription: %s", self.client_id, reason_codes)
            return
        with self._lock:
            self._pending_subs.discard(mid)
            subscribed = not self._pending_subs
        if subscribed:
            self._all_subscribed()

    def _all_subscribed(self) -> None:
        """Every filter of this connection acknowledged: the waiters, then the callback."""
        self._subscribed.set()
        if self._user_on_subscribed is not None:
            self._user_on_subscribed()

    def wait_subscribed(self, timeout: float | None = None) -> bool:
        """Until the broker acknowledged every subscription (or ``timeout``)."""
        return self._subscribed.wait(timeout)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if not self._connected.is_set() and self.refusal is None and reason_code.is_failure:
            # dropped before any CONNACK: a TLS listener that refused our certificate (or wants
            # one), or something that is not an MQTT broker
            log.warning(
                "%s: the broker at %s:%d closed the connection before accepting it (%s; a TLS"
                " listener does so to a client without a certificate it accepts); retrying",
                self.client_id,
                self.broker.host,
                self.broker.port,
                reason_code,
            )
        self._connected.clear()
        if self._user_on_disconnect is not None:
            self._user_on_disconnect()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        with self._lock:
            cb = self._ack_callbacks.pop(mid, None)
            if cb is None:
                self._early_acks.add(mid)
        if cb is not None:
            cb()

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        if self._sink is not None:
            self._sink(
                InboundMessage(
                    msg.topic,
                    msg.payload,
                    bool(msg.retain),
                    bool(msg.dup),
                    msg.mid,
                    msg.qos,
                    self._generation,
                )
            )

    def ack(self, msg: InboundMessage) -> None:
        """With ``manual_ack``: acknowledge a received message once it is safely processed.

        An acknowledgement for a message delivered on an earlier connection is not sent: the
        broker redelivers that message on the new one (persistent session) and the consumer's
        de-duplication absorbs it."""
        self.ack_ids(msg.mid, msg.qos, msg.generation)

    def ack_many(self, messages: Iterable[InboundMessage]) -> None:
        """:meth:`ack` for each of ``messages``, in order."""
        for msg in messages:
            self.ack(msg)

    def ack_ids(self, mid: int, qos: int, generation: int) -> None:
        """:meth:`ack` by a message's (mid, qos, generation), as a process that received the
        message through this link's sink hands them back."""
        if qos > 0 and generation == self._generation:
            self._client.ack(mid, qos)
