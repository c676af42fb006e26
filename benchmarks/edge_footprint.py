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
Usage: ``.venv/bin/python benchmarks/edge_footprint.py [--duration S]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qloop.broker import start_broker
from qloop.protocol import AIR_CONDITIONER_FIELDS

ROOT = Path(__file__).resolve().parent.parent
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qloop-footprint-"))
    broker = start_broker(tmp / "broker")
    csv = tmp / "rec.csv"
    csv.write_text(
        "ts,"
        + ",".join(FIELDS)
        + "\n"
        + "".join(f"{t},24.0,{25 + t % 7 / 10},16.2,31.0,1,2,4.2,41.3,0.03\n" for t in range(3600))
    )
    total = args.duration + args.warmup + 2
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
    time.sleep(args.warmup)
    t0 = time.monotonic()
    cpu0 = {n: cpu_seconds(p.pid) for n, p in running.items()}
    peak = {n: 0.0 for n in running}
    while time.monotonic() - t0 < args.duration:
        for n, p in running.items():
            peak[n] = max(peak[n], rss_mb(p.pid))
        time.sleep(1.0)
    wall = time.monotonic() - t0
    cpu = {n: (cpu_seconds(p.pid) - cpu0[n]) / wall for n, p in running.items()}
    for p in running.values():
        p.wait(30)
    broker.stop()
    print(
        f"{args.duration:.0f} s at 1 Hz x 10 fields (ts + 9), Mosquitto, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print("| process | CPU (% of one core) | peak RSS (MB) |\n| --- | --- | --- |")
    for n in running:
        print(f"| {n} | {100 * cpu[n]:.2f} | {peak[n]:.1f} |")


if __name__ == "__main__":
    main()
