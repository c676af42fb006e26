"""Publisher drain policy and the agent's crash recovery, without a broker (a fake link).

Events leave ahead of any backlog; after a reconnect live blocks go before the backlog, which
fills the rest of the window oldest first; a message leaves the buffer only on its PUBACK. The
agent resumes ``seq`` and its open block from the disk buffer after a crash.
"""

from __future__ import annotations

from contract import protocol
from contract.mqtt import BrokerAddress
from contract.protocol import Event, Telemetry
from edge_agent.agent import EdgeAgent
from edge_agent.buffer import MemoryBuffer
from edge_agent.core import Identity, SafetyRule
from edge_agent.disk_buffer import DiskBuffer
from edge_agent.publisher import Publisher

DEV = "ac-pub-1"


class FakeLink:
    """Records publications; the test decides when the link is up and when PUBACKs come."""

    def __init__(self, *args: object, on_connect=None, **kw: object) -> None:
        self.connected = False
        self.sent: list[tuple[str, bytes, bool]] = []
        self.unacked: list = []
        self.on_connect = on_connect

    def start(self) -> None:
        self.up()

    def up(self) -> None:
        self.connected = True
        if self.on_connect:
            self.on_connect()

    def close(self) -> None:
        self.connected = False

    def publish(self, topic, payload, *, qos=1, retain=False, on_ack=None) -> None:
        self.sent.append((topic, payload, retain))
        if on_ack is not None:
            self.unacked.append(on_ack)

    def ack_all(self) -> None:
        acks, self.unacked = self.unacked, []
        for a in acks:
            a()

    def kinds(self) -> list[str]:
        return [protocol.parse_topic(t).kind for t, _, _ in self.sent]

    def seqs(self) -> list[int]:
        return [
            protocol.decode(t, p).seq
            for t, p, _ in self.sent
            if protocol.parse_topic(t).kind in ("telemetry", "event")
        ]


def block(seq: int, rows: int = 2) -> Telemetry:
    return Telemetry(DEV, seq, ("ts", "x"), tuple((float(seq * 10 + i), 1.0) for i in range(rows)))


def event(seq: int) -> Event:
    return Event(DEV, seq, float(seq), "overcurrent", 12.0, 10.0)


def test_messages_leave_the_buffer_only_on_puback():
    link, buf = FakeLink(), MemoryBuffer()
    pub = Publisher(link, buf, window=10)
    pub.submit(block(0))
    assert pub.pump() == 0 and len(buf) == 1, "link down: nothing goes"
    link.up()
    assert pub.pump() == 1 and pub.pump() == 0, "published once, not again"
    assert len(buf) == 1 and pub.inflight == 1
    link.ack_all()
    pub.pump()
    assert len(buf) == 0 and pub.acknowledged == 1


def test_safety_event_goes_ahead_of_a_backlog():
    link, buf = FakeLink(), MemoryBuffer()
    pub = Publisher(link, buf, window=5)
    for s in range(50):  # an outage's backlog
        pub.submit(block(s))
    link.up()
    pub.pump()
    assert link.seqs() == [0, 1, 2, 3, 4]
    pub.submit(event(50))
    link.ack_all()
    pub.pump()
    assert link.seqs()[5] == 50, "the event is the first thing sent when the window opens"
    assert link.kinds()[5] == "event"


def test_live_blocks_interleave_with_the_backlog_after_a_reconnect():
    link, buf = FakeLink(), MemoryBuffer()
    pub = Publisher(link, buf, window=4)
    link.up()
    pub.submit(block(0))
    pub.pump()
    link.ack_all()
    link.connected = False  # outage: blocks 1..30 pile up
    for s in range(1, 31):
        pub.submit(block(s))
    assert pub.pump() == 0
    link.up()
    pub.pump()
    assert link.seqs() == [0, 1, 2, 3, 4], "backlog oldest first"
    assert pub.backlog
    pub.submit(block(31))  # live data while the backlog drains
    link.ack_all()
    pub.pump()
    assert link.seqs()[5:] == [31, 5, 6, 7], "the live block first, then more backlog"
    while pub.backlog or pub.inflight:
        link.ack_all()
        pub.pump()
    assert sorted(link.seqs()) == list(range(32)) and len(buf) == 0


def test_window_bounds_messages_in_flight():
    link, buf = FakeLink(), MemoryBuffer()
    pub = Publisher(link, buf, window=3)
    for s in range(10):
        pub.submit(block(s))
    link.up()
    pub.pump()
    pub.pump()
    assert pub.inflight == 3 and len(link.sent) == 3


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class Counter:
    fields = ("current_a", "n")

    def __init__(self) -> None:
        self.n = 0

    def read(self, ts: float):
        self.n += 1
        return (12.0 if self.n == 3 else 4.0, float(self.n))


def make_agent(buf, clock, link_box):
    def factory(*a, **kw):
        link_box.append(FakeLink(*a, **kw))
        return link_box[-1]

    ident = Identity(DEV, "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=1.0)
    return EdgeAgent(
        ident,
        Counter(),
        buf,
        BrokerAddress(),
        clock=clock,
        block_rows=5,
        block_max_age_s=1e9,
        link_factory=factory,
        rules=[SafetyRule("overcurrent", "current_a", 10.0)],
    )


def test_agent_resumes_seq_and_the_open_block_after_a_crash(tmp_path):
    clock, links = Clock(), []
    agent = make_agent(DiskBuffer(tmp_path / "b.db"), clock, links)
    for _ in range(8):  # 5 rows → block seq 1 (event seq 0 at n=3); 3 rows staged
        agent.sample_once()
        clock.sleep(1.0)
    assert agent.core.next_seq == 2 and len(agent.core.open_rows) == 3
    # crash: the agent object is gone without flush; the file is what is left
    again = make_agent(DiskBuffer(tmp_path / "b.db"), clock, links)
    assert again.core.next_seq == 2
    assert [r[2] for r in again.core.open_rows] == [6.0, 7.0, 8.0]
    again.source.n = 100
    for _ in range(2):
        again.sample_once()
    link = links[-1]
    link.up()
    again.publisher.pump()
    sent = [protocol.decode(t, p) for t, p, _ in link.sent if "telemetry" in t or "event" in t]
    blocks = [m for m in sent if isinstance(m, Telemetry)]
    events = [m for m in sent if isinstance(m, Event)]
    assert [b.seq for b in blocks] == [1, 2] and [e.seq for e in events] == [0]
    assert [r[2] for r in blocks[1].rows] == [6.0, 7.0, 8.0, 101.0, 102.0]
    ts = [r[0] for b in blocks for r in b.rows]
    assert ts == sorted(ts), "rows stay in time order across the restart"


def test_birth_on_every_connect_reports_drops():
    clock, links = Clock(), []
    buf = MemoryBuffer(max_messages=1)
    agent = make_agent(buf, clock, links)
    for _ in range(15):
        agent.sample_once()
    link = links[-1]
    link.up()
    link.connected = False
    link.up()
    births = [protocol.decode(t, p) for t, p, _ in link.sent if t.endswith("/birth")]
    status = [p for t, p, _ in link.sent if t.endswith("/status")]
    assert len(births) == 2 and status == [b"online", b"online"]
    # three blocks of 5 rows dropped; the one safety event is what the buffer keeps
    assert births[0].extra["dropped_readings"] == buf.stats().dropped_readings == 15
    assert len(buf) == 1 and buf.pending(1, 0, 10)
    assert all(r for t, _, r in link.sent if t.endswith(("/birth", "/status"))), "retained"
