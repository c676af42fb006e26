"""The edge agent's footprint: CPU share and memory at 1 Hz × 10 fields, against Mosquitto.

Runs, side by side for the same ``--duration`` (default 60 s) against one Mosquitto:

* ``agent (simulated)``: ``qloop edge run`` with the simulated unit source (numpy physics),
  disk buffer, 1 sample/s of ts + 9 fields, blocks of 60 rows;
* ``agent (csv)``: the same agent replaying a CSV (no numpy), as on a device whose sensors are
  read by a small driver;
* ``bare paho publisher``: a minimal script that publishes one QoS 1 message a second;
* ``idle python``: an interpreter that only sleeps (the floor of any Python process).

Each process is sampled from /proc every second after a warm-up: CPU = (utime + stime) over
wall time after the warm-up, as a share of one core; RSS = the largest VmRSS seen. Not a test.
Usage: ``.venv/bin/python benchmarks/edge_footprint.py [--duration S]``, or
``qloop bench --only edge_footprint`` (:func:`bench_edge_footprint`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, Result, rss_bytes, stop_process
from contract.protocol import AIR_CONDITIONER_FIELDS
from qloop.broker import start_broker

TICK = os.sysconf("SC_CLK_TCK")
FIELDS = AIR_CONDITIONER_FIELDS[1:]

PAHO = """
import sys, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bare-paho")
c.connect(host, port)
c.loop_start()
end = time.monotonic() + duration
while time.monotonic() < end:
    c.publish("bench/bare", b'{"ts": 1, "x": [1,2,3,4,5,6,7,8,9]}', qos=1)
    time.sleep(1.0)
c.disconnect()
c.loop_stop()
"""


def agent_config(tmp: Path, name: str, address: str, source: str) -> Path:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(f"""
[device]
id = "ac-{name}"
model = "KFR-35GW"
batch = "B1"
serial = "SN-{name}"
firmware = "2.3.0"
[broker]
address = "{address}"
[sampling]
period_s = 1.0
block_rows = 60
block_max_age_s = 60.0
[buffer]
path = "{tmp / name}.db"
[metrics]
status_file = "{tmp / name}-status.json"
[source]
{source}
""")
    return cfg


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


@dataclass(frozen=True)
class Footprint:
    """One process's share of a core (over the measured wall time) and its peak RSS."""

    cpu_share: float
    peak_rss_mb: float


def measure(duration: float, warmup: float) -> dict[str, Footprint]:
    """Run the four processes side by side against one Mosquitto; their footprints."""
    tmp = Path(tempfile.mkdtemp(prefix="qloop-footprint-"))
    broker = start_broker(tmp / "broker")
    try:
        csv = tmp / "rec.csv"
        csv.write_text(
            "ts,"
            + ",".join(FIELDS)
            + "\n"
            + "".join(
                f"{t},24.0,{25 + t % 7 / 10},16.2,31.0,1,2,4.2,41.3,0.03\n" for t in range(3600)
            )
        )
        total = duration + warmup + 2
        env = {k: v for k, v in os.environ.items() if not k.startswith("QLOOP_")}
        edge = [
            sys.executable,
            "-m",
            "qloop",
            "--log-level",
            "WARNING",
            "edge",
            "run",
            "--duration",
            str(total),
            "--config",
        ]
        procs = {
            "agent (simulated)": edge
            + [str(agent_config(tmp, "sim", broker.address, 'kind = "simulated"'))],
            "agent (csv)": edge
            + [str(agent_config(tmp, "csv", broker.address, f'kind = "csv"\npath = "{csv}"'))],
            "bare paho publisher": [
                sys.executable,
                "-c",
                PAHO,
                broker.host,
                str(broker.port),
                str(total),
            ],
            "idle python": [sys.executable, "-c", f"import time; time.sleep({total})"],
        }
        running = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in procs.items()}
        try:
            time.sleep(warmup)  # the measurement window starts after it, not a synchronisation
            t0 = time.monotonic()
            cpu0 = {n: cpu_seconds(p.pid) for n, p in running.items()}
            peak = dict.fromkeys(running, 0.0)
            while True:
                for n, p in running.items():
                    peak[n] = max(peak[n], rss_bytes(p.pid) / 2**20)
                if time.monotonic() - t0 >= duration:
                    break
                time.sleep(min(1.0, duration / 4))
            wall = time.monotonic() - t0
            cpu = {n: (cpu_seconds(p.pid) - cpu0[n]) / wall for n, p in running.items()}
            for p in running.values():
                p.wait(30)
        finally:
            for p in running.values():
                stop_process(p)
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {n: Footprint(cpu[n], peak[n]) for n in running}


def bench_edge_footprint(quick: bool = False) -> Result:
    """The agent's CPU and memory (both sources) beside a bare paho publisher's, same run.

    Quick: 3 s with no warm-up, so the CPU figures include the interpreters' start-up (never
    zero, and meaningless as steady-state figures)."""
    duration, warmup = (3.0, 0.0) if quick else (60.0, 5.0)
    fp = measure(duration, warmup)
    res = Result("edge_footprint")
    bare = fp["bare paho publisher"]
    for source in ("csv", "simulated"):
        agent = fp[f"agent ({source})"]
        cpu = 100 * agent.cpu_share
        res.add(
            f"`qloop edge run` ({source} source), 1 Hz × 10 fields, CPU",
            cpu,
            "% of one core",
            "bare paho publisher, 1 QoS 1 message/s",
            100 * bare.cpu_share,
            target="< 1 % of one core",
            met=cpu < 1.0,
        )
        res.add(
            f"`qloop edge run` ({source} source), peak RSS",
            agent.peak_rss_mb,
            "MB",
            "bare paho publisher",
            bare.peak_rss_mb,
            target="< 40 MB",
            met=agent.peak_rss_mb < 40.0,
        )
    res.add(
        "bare paho publisher, peak RSS",
        bare.peak_rss_mb,
        "MB",
        "idle Python interpreter",
        fp["idle python"].peak_rss_mb,
    )
    res.params = {"duration_s": duration, "warmup_s": warmup}
    startup = " (so CPU includes start-up)" if quick else ""
    res.notes.append(
        f"{duration:g} s after a {warmup:g} s warm-up{startup}, all four processes side by side "
        "against one Mosquitto; CPU = user + system time over wall time; RSS = largest VmRSS "
        "sampled."
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    args = ap.parse_args()
    fp = measure(args.duration, args.warmup)
    print(
        f"{args.duration:.0f} s at 1 Hz x 10 fields (ts + 9), Mosquitto, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print("| process | CPU (% of one core) | peak RSS (MB) |\n| --- | --- | --- |")
    for n, f in fp.items():
        print(f"| {n} | {100 * f.cpu_share:.2f} | {f.peak_rss_mb:.1f} |")


if __name__ == "__main__":
    main()
