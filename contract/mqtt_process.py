"""An MQTT link whose receiving runs in a child process (:class:`ProcessLink`).

A consumer that does heavy work on every message (the cloud worker: decoding, detectors, the
journal) shares one GIL with paho's network thread when both run in one process: receiving and
processing take turns instead of overlapping. :class:`ProcessLink` runs an ordinary
:class:`~contract.mqtt.MqttLink` (paho is still driven only from ``contract/mqtt.py``) in a
child process started with ``spawn``, and forwards to the consumer's process what it receives,
a batch at a time, and the connection's state; the consumer's acknowledgements go back the
other way and the child hands them to paho. It has the interface a subscriber uses of
:class:`MqttLink`: ``start``, ``wait_connected``, ``wait_refused``, ``wait_subscribed``,
``connected``, ``refusal``, ``ack``/``ack_many``, ``close``, ``abort`` (no publishing).

When it pays: it moves the receiving (about 45 µs of CPU per message in the ingest benchmark)
out of the consumer's process, and the total CPU per message stays about the same (the child's
queue and a pickled batch each way cost about what the GIL's turn-taking did), so it speeds a
consumer up where receiving and processing can overlap. While the worker's processing cost
twice what it does now, it measured no faster than paho's thread on the 2-core benchmark VM
(BENCHMARKS.md, issue 17, third part). Once the processing got cheaper it measured ahead there
too, and ``qloop cloud run`` uses it by default (fourth part).

Two pipes, one per direction. In the child, paho's thread puts each message (as a plain tuple)
on a bounded queue; a forwarder thread takes what is queued (up to ``_BATCH`` at once) and
sends it as one pickled list; the child's main thread reads acknowledgements and commands. In
the consumer's process a reader thread unpickles each batch and calls ``on_message`` for every
message, which may block (a full queue): the pipe then fills, the forwarder blocks, the child's
queue fills, paho's thread blocks in its callback and stops reading the socket, and the broker
holds the rest (at most ``max_inflight`` unacknowledged). Neither side blocks on the other in
both directions: the child's main thread only reads acknowledgements and hands them to paho,
which never waits for the forwarder.

Failure: the child ignores SIGINT and SIGTERM (the consumer stops it, after draining) and exits
when its pipe from the consumer closes, so a consumer that is killed leaves no child behind.
A child that dies is started again (its session is persistent, so the broker redelivers what
it had not acknowledged); messages still in the pipes when either side stops are simply not
acknowledged, and the consumer's de-duplication absorbs their redelivery. The child's log
records (the link's warnings about an unreachable or refusing broker) are forwarded to the
consumer's loggers under their own names.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing as mp
import multiprocessing.util  # its exit handler (joins children) must run after ours: see _at_exit
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from contract.handoff import Handoff
from contract.mqtt import BrokerAddress, BrokerRefused, InboundMessage, MqttLink, Will

log = logging.getLogger(__name__)

_BATCH = 512  # messages forwarded in one pipe write at most
_GATHER_S = 0.002  # how long the child gathers a batch at most (a safety event waits that long)
_QUEUED = 2000  # messages the child holds before paho's thread waits
_GENERATION_BITS = 32  # a message's generation: (child incarnation << 32) | the link's generation
_CTX = mp.get_context("spawn")  # not fork: the consumer's threads must not be copied


# --- the child ---------------------------------------------------------------------------------


class _LogForwarder(logging.Handler):
    def __init__(self, out: Handoff) -> None:
        super().__init__()
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        # a consumer busy with messages: the record is dropped (the link warns at every attempt)
        self._out.offer(("log", record.name, record.levelno, record.getMessage()))


def _child(
    link_args: dict[str, Any], to_parent: Any, from_parent: Any, log_level: int
) -> None:  # pragma: no cover - runs in the child (the tests see its effects)
    """The receiving process: an :class:`MqttLink`, a forwarder thread, acks from the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the consumer stops us, after its drain
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out: Handoff = Handoff(_QUEUED)
    root = logging.getLogger()
    root.handlers[:] = [_LogForwarder(out)]
    root.setLevel(log_level)
    closing = threading.Event()

    def sink(m: InboundMessage) -> None:
        if not closing.is_set():
            out.put(tuple(m), give_up=closing.is_set)

    def event(*e: object) -> Callable[..., None]:
        return lambda *_: out.put(e)

    link = MqttLink(
        **link_args,
        on_message=sink,
        on_connect=event("connected"),
        on_disconnect=event("disconnected"),
        on_subscribed=event("subscribed"),
        on_refused=lambda r: out.put(("refused", str(r))),
    )

    def forward() -> None:
        dumps, send = pickle.dumps, to_parent.send_bytes
        while True:
            batch = [out.get()]
            # let a batch gather for _GATHER_S, asleep: fewer, larger writes wake the consumer's
            # reader thread (and take its GIL) less often, and paho's thread here runs without
            # waking this one for every message
            if out.qsize() < _BATCH:
                time.sleep(_GATHER_S)
            try:
                while len(batch) < _BATCH:
                    batch.append(out.get_nowait())
            except queue.Empty:
                pass
            if closing.is_set():
                continue  # dropped unacknowledged: paho's thread must not wait on a full queue
            try:
                send(dumps(batch, pickle.HIGHEST_PROTOCOL))
            except OSError:  # the consumer is gone
                closing.set()

    threading.Thread(target=forward, name="mqtt-forward", daemon=True).start()
    link.start()
    ack, loads = link.ack_ids, pickle.loads
    try:
        while True:
            command = loads(from_parent.recv_bytes())
            if isinstance(command, list):
                for mid, qos, generation in command:
                    ack(mid, qos, generation)
            elif command == "abort":
                closing.set()
                link.abort()
                return
            else:  # "close"
                break
    except (EOFError, OSError):  # the consumer died: end its session as a crash would
        pass
    closing.set()
    link.close()


# --- the consumer's side -----------------------------------------------------------------------


class ProcessLink:
    """An :class:`MqttLink` for receiving, run in a child process (see the module docstring).

    ``on_message`` is called on a reader thread of this process with each
    :class:`InboundMessage`, in the order the child received them; ``on_connect`` and
    ``on_disconnect`` too, when the child's link connects or loses its connection."""

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
        keepalive: int = 30,
        max_inflight: int = 200,
        manual_ack: bool = False,
    ) -> None:
        self.client_id = client_id
        self.broker = broker
        self._link_args = {
            "client_id": client_id,
            "broker": broker,
            "clean_session": clean_session,
            "will": will,
            "subscriptions": list(subscriptions),
            "keepalive": keepalive,
            "max_inflight": max_inflight,
            "manual_ack": manual_ack,
        }
        self._sink = on_message
        self._user_on_connect = on_connect
        self._user_on_disconnect = on_disconnect
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._changed = threading.Condition()
        self.refusal: BrokerRefused | None = None
        self._send_lock = threading.Lock()
        self._life = threading.Lock()  # starting a child vs stopping: one at a time
        self._closing = threading.Event()
        self._incarnation = 0
        self._proc: Any = None
        self._to_child: Any = None
        self._reader: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child; it connects in the background and keeps reconnecting."""
        atexit.register(self._at_exit)
        self._spawn()

    def _at_exit(self) -> None:
        """The interpreter exits without :meth:`close`: close the child's pipe, so that it ends
        (it ignores SIGTERM, and multiprocessing's exit handler waits for its children; atexit
        runs handlers last-registered first, and that one is registered when
        ``multiprocessing.util`` is imported, above)."""
        self._closing.set()
        with self._send_lock:
            if self._to_child is not None:
                self._to_child.close()
                self._to_child = None

    def _spawn(self) -> None:
        with self._life:  # never a new child once closing: _stop takes the same lock
            if not self._closing.is_set():
                self._start_child()

    def _start_child(self) -> None:
        self._incarnation += 1
        from_child, child_out = _CTX.Pipe(duplex=False)
        child_in, to_child = _CTX.Pipe(duplex=False)
        level = logging.getLogger("contract.mqtt").getEffectiveLevel()
        proc = _CTX.Process(
            target=_child,
            args=(self._link_args, child_out, child_in, level),
            name=f"mqtt-receiver-{self.client_id}",
            daemon=True,
        )
        proc.start()
        child_out.close()  # only the child writes there: its exit is our EOF
        child_in.close()  # only we write to the child: our exit (or close) is its EOF
        self._proc, self._to_child = proc, to_child
        self._reader = threading.Thread(
            target=self._read,
            args=(from_child, self._incarnation),
            name="mqtt-receiver",
            daemon=True,
        )
        self._reader.start()

    def _read(self, from_child: Any, incarnation: int) -> None:
        """Reader thread: messages and state from the child, until it exits."""
        base = incarnation << _GENERATION_BITS
        sink, loads, message = self._sink, pickle.loads, InboundMessage
        try:
            while True:
                batch = loads(from_child.recv_bytes())
                if self._closing.is_set():
                    continue
                for item in batch:
                    if len(item) == 7:
                        if sink is not None:
                            t, p, r, d, mid, qos, g = item
                            sink(message(t, p, r, d, mid, qos, base | g))
                    else:
                        self._state(item)
        except (EOFError, OSError):
            pass
        from_child.close()
        self._lost_connection()
        if not self._closing.is_set():
            log.error("%s: the MQTT receiver process exited; starting it again", self.client_id)
            self._proc.join(5)  # reaped, not left a zombie
            time.sleep(1.0)  # a child that cannot start must not be restarted in a busy loop
            if not self._closing.is_set():
                self._spawn()

    def _state(self, item: tuple) -> None:
        kind = item[0]
        if kind == "log":
            logging.getLogger(item[1]).log(item[2], "%s", item[3])
        elif kind == "connected":
            with self._changed:
                self.refusal = None
                self._connected.set()
                self._changed.notify_all()
            if self._user_on_connect is not None:
                self._user_on_connect()
        elif kind == "subscribed":
            self._subscribed.set()
        elif kind == "refused":
            with self._changed:
                self.refusal = BrokerRefused(item[1])
                self._changed.notify_all()
        elif kind == "disconnected":
            self._lost_connection()

    def _lost_connection(self) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and self._user_on_disconnect is not None:
            self._user_on_disconnect()

    # the same state (``_connected``, ``_subscribed``, ``_changed``, ``refusal``), the same waits
    wait_connected = MqttLink.wait_connected
    wait_refused = MqttLink.wait_refused
    wait_subscribed = MqttLink.wait_subscribed
    connected = MqttLink.connected

    @property
    def pid(self) -> int | None:
        """The child's process id (None before :meth:`start`)."""
        return None if self._proc is None else self._proc.pid

    def _send(self, command: object) -> None:
        with self._send_lock:
            if self._to_child is None:
                return
            # a child that is gone: what it did not acknowledge comes again
            with contextlib.suppress(OSError):
                self._to_child.send_bytes(pickle.dumps(command, pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Acknowledgements sent so far reach paho first; then the child disconnects cleanly
        and exits. Messages it forwarded after this are dropped, unacknowledged."""
        self._stop("close")

    def abort(self) -> None:
        """As :meth:`MqttLink.abort`: the child drops the connection without DISCONNECT."""
        self._stop("abort")

    def _stop(self, command: str) -> None:
        self._closing.set()
        atexit.unregister(self._at_exit)
        if self._proc is None:
            return
        with self._life:  # the child now running, not one a restart starts meanwhile
            self._send(command)
            self._proc.join(15)
            if self._proc.is_alive():  # pragma: no cover - a child stuck in paho
                self._proc.kill()
                self._proc.join()
            with self._send_lock:
                if self._to_child is not None:
                    self._to_child.close()
                    self._to_child = None
        if self._reader is not None:
            self._reader.join(5)
        self._connected.clear()

    # --- acknowledgements ----------------------------------------------------------------------

    def ack(self, msg: InboundMessage) -> None:
        """As :meth:`MqttLink.ack` (one pipe write: prefer :meth:`ack_many`)."""
        self.ack_many((msg,))

    def ack_many(self, messages: Iterable[InboundMessage]) -> None:
        """Hand the acknowledgements of ``messages`` to the child in one write. One received
        from an earlier child is not sent: the broker redelivers it to the new one."""
        current = self._incarnation
        mask = (1 << _GENERATION_BITS) - 1
        acks = [
            (m.mid, m.qos, m.generation & mask)
            for m in messages
            if m.qos > 0 and m.generation >> _GENERATION_BITS == current
        ]
        if acks:
            self._send(acks)
