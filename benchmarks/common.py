"""What every benchmark shares: figures with their same-run baselines, percentiles, RSS, a bare
paho counting subscriber, a windowed publisher process, and the Markdown table.

A :class:`Figure` is one measured number next to the baseline measured in the same run (the
machines are shared, so absolute numbers drift; the ratio is what carries over between runs).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import platform
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# spawn, not fork: the children must not inherit the parent's paho threads or numpy state
CTX = mp.get_context("spawn")


@dataclass
class Figure:
    """``value`` (in ``unit``) next to ``baseline`` measured in the same run."""

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: str = ""  # e.g. ">= 100,000 readings/s"
    met: bool | None = None  # against the target; None when there is no target
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


@dataclass
class Result:
    bench: str
    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, *args: Any, **kw: Any) -> Figure:
        f = Figure(*args, **kw)
        self.figures.append(f)
        return f

    def add_latency(
        self,
        name: str,
        values: Sequence[float],
        baseline_name: str,
        baseline: Sequence[float],
        p99_target_s: float,
    ) -> None:
        """p50 and p99 of ``values`` (seconds) in ms beside the baseline's; the target on p99."""
        for q in (50, 99):
            self.add(
                f"{name}, p{q}",
                percentile(values, q) * 1000,
                "ms",
                f"{baseline_name} p{q}",
                percentile(baseline, q) * 1000,
                target=f"p99 <= {p99_target_s * 1000:,.0f} ms" if q == 99 else "",
                met=percentile(values, q) <= p99_target_s if q == 99 else None,
            )

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The process's direct children (Linux)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} vCPU ({cpu}), Python {platform.python_version()}, "
        f"load average at start {load}"
    )


def python_cmd(*args: str) -> list[str]:
    """Run ``python -m qloop ...`` (or anything) with the interpreter running the benchmark."""
    return [sys.executable, *args]


def spawn_qloop(
    args: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
) -> subprocess.Popen:
    """A ``python -m qloop ...`` subprocess whose output goes to ``log`` (under cProfile, writing
    ``profile`` when it exits, if given)."""
    out = open(log, "ab")  # noqa: SIM115 - closed with the process by the OS
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return subprocess.Popen(
        python_cmd(*prof, "-m", "qloop", *args),
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(cond: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


# --- processes: a bare counting subscriber and a windowed publisher ------------------------------


def _count_messages(
    host: str,
    port: int,
    filters: list[str],
    expected: Any,
    count: Any,
    ready: Any,
    out: Any,
    timeout: float,
) -> None:
    """Child process: count messages on ``filters`` until ``expected.value`` (set by the parent,
    possibly later; -1 = stop now) arrived. The baseline: a Python consumer that only receives
    and acknowledges."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        if state["n"] == 0:
            state["first"] = now
        state["n"] += 1
        state["last"] = now

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe([(f, 1) for f in filters])

    def on_subscribe(client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        ready.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-count-{os.getpid()}")
    c.on_message, c.on_connect, c.on_subscribe = on_message, on_connect, on_subscribe
    c.max_inflight_messages_set(1000)
    c.connect(host, port)
    c.loop_start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        want = expected.value
        count.value = state["n"]
        if want < 0 or (want > 0 and state["n"] >= want):
            break
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()
    out.put((state["n"], state["first"], state["last"]))


class CountingSubscriber:
    """Runs :func:`_count_messages` in its own process; :meth:`result` waits for its count.

    ``expected`` may be given later with :meth:`expect` (when the producer's count is known
    only at its end)."""

    def __init__(
        self,
        host: str,
        port: int,
        filters: list[str],
        expected: int = 0,
        timeout: float = 7200.0,
    ) -> None:
        self._ready = CTX.Event()
        self._out = CTX.Queue()
        self._expected = CTX.Value("q", expected)
        self._count = CTX.Value("q", 0)
        self._proc = CTX.Process(
            target=_count_messages,
            args=(
                host,
                port,
                filters,
                self._expected,
                self._count,
                self._ready,
                self._out,
                timeout,
            ),
            daemon=True,
        )
        self._proc.start()
        if not self._ready.wait(60):
            self._proc.terminate()
            raise RuntimeError("the counting subscriber did not subscribe")

    def expect(self, n: int) -> None:
        self._expected.value = n

    @property
    def count(self) -> int:
        return self._count.value

    def result(self, idle_s: float = 30.0) -> tuple[int, float, float]:
        """(messages, monotonic time of the first, of the last), once the expected count arrived
        or nothing arrived for ``idle_s``; a short count means loss."""
        last, since = -1, time.monotonic()
        while self._out.empty() and time.monotonic() - since < idle_s:
            if self.count != last:
                last, since = self.count, time.monotonic()
            time.sleep(0.05)
        if self._out.empty():
            self._expected.value = -1
        try:
            return self._out.get(timeout=60)
        finally:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.terminate()


def _publish_file(
    host: str, port: int, path: str, window: int, go: Any, out: Any, name: str
) -> None:
    """Child process: publish the pickled ``[(topic, payload, retain), ...]`` at QoS 1 with at
    most ``window`` unacknowledged, once ``go`` is set; report (first publish, last ack)."""
    from contract.mqtt import BrokerAddress, MqttLink

    with open(path, "rb") as f:
        items: list[tuple[str, bytes, bool]] = pickle.load(f)  # noqa: S301 - our own file
    link = MqttLink(name, BrokerAddress(host, port), max_inflight=0)
    link.start()
    if not link.wait_connected(30):
        out.put(("error", "publisher could not connect"))
        return
    room = threading.Semaphore(window)
    acked = threading.Event()
    left = [len(items)]
    lock = threading.Lock()

    def on_ack() -> None:
        room.release()
        with lock:
            left[0] -= 1
            if left[0] == 0:
                acked.set()

    go.wait()
    t0 = time.monotonic()
    for topic_name, payload, retain in items:
        room.acquire()
        link.publish(topic_name, payload, retain=retain, on_ack=on_ack)
    if items:
        acked.wait(600)
    t1 = time.monotonic()
    link.close()
    out.put(("ok", t0, t1))


def publish_in_processes(
    host: str,
    port: int,
    parts: Sequence[Sequence[tuple[str, bytes, bool]]],
    workdir: Path,
    window: int = 500,
) -> tuple[Any, list[Any], Any]:
    """Start one publisher process per part, connected and waiting; returns (go, procs, out):
    set ``go`` to start them all at once, then read one result per process from ``out``."""
    go, out = CTX.Event(), CTX.Queue()
    procs = []
    for i, items in enumerate(parts):
        path = workdir / f"publish-{i}.pickle"
        with open(path, "wb") as f:
            pickle.dump(list(items), f, protocol=pickle.HIGHEST_PROTOCOL)
        p = CTX.Process(
            target=_publish_file,
            args=(host, port, str(path), window, go, out, f"bench-pub-{os.getpid()}-{i}"),
            daemon=True,
        )
        p.start()
        procs.append(p)
    return go, procs, out


def collect_publishers(procs: list[Any], out: Any, timeout: float = 900.0) -> tuple[float, float]:
    """Wait for every publisher; (earliest first publish, latest last acknowledgement)."""
    t0s, t1s = [], []
    deadline = time.monotonic() + timeout
    for _ in procs:
        while True:
            try:
                r = out.get(timeout=1.0)
                break
            except queue.Empty:
                if time.monotonic() > deadline or not any(p.is_alive() for p in procs):
                    raise RuntimeError("a publisher process died or timed out") from None
        if r[0] != "ok":
            raise RuntimeError(r[1])
        t0s.append(r[1])
        t1s.append(r[2])
    for p in procs:
        p.join(10)
    return min(t0s), max(t1s)


# --- the Markdown table in BENCHMARKS.md ------------------------------------------------------

SECTION = "## Benchmark runs"


def _num(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.3g}"


def markdown(results: Sequence[Result], *, quick: bool, when: str, command: str) -> str:
    lines = [
        f"### {when}{' (quick mode: tiny sizes, figures not meaningful)' if quick else ''}",
        "",
        f"`{command}` on {machine()}.",
        "",
        "| benchmark | figure | value | same-run baseline | baseline value | ratio | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for f in r.figures:
            verdict = "" if f.met is None else (" — met" if f.met else " — **missed**")
            lines.append(
                f"| {r.bench} | {f.name} | {_num(f.value)} {f.unit} | {f.baseline_name} | "
                f"{_num(f.baseline)} {f.unit} | {_num(f.ratio)} | {f.target}{verdict} |"
            )
    notes = [(r.bench, n) for r in results for n in r.notes]
    if notes:
        lines.append("")
        lines += [f"- {bench}: {n}" for bench, n in notes]
    return "\n".join(lines) + "\n"


def append_section(path: Path, text: str) -> None:
    """Append ``text`` at the end of the "## Benchmark runs" section of ``path`` (created if
    missing), leaving every other section as it is: other engineers write those."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION not in doc.splitlines():
        path.write_text(doc.rstrip("\n") + f"\n\n{SECTION}\n\n{text}")
        return
    lines = doc.splitlines(keepends=True)
    start = lines.index(SECTION + "\n") if SECTION + "\n" in lines else len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    head, tail = "".join(lines[:end]).rstrip("\n"), "".join(lines[end:])
    path.write_text(head + "\n\n" + text + ("\n" + tail if tail else ""))
