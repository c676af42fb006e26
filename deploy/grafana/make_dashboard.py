"""Write Grafana's qloop dashboard (``deploy/grafana/dashboards/qloop.json``) from the shipped
Flux queries, so the panels ask exactly what ``cloud/store/queries/*.flux`` asks.

Each panel's query is the shipped file's text, unchanged, after assignments that bind its
declared parameters to the dashboard: a string to the template variable of that name (the
bucket to "qloop"), a time to the dashboard's time range, a duration to Grafana's window. A test
checks that the committed JSON is what this script writes.

    python deploy/grafana/make_dashboard.py > deploy/grafana/dashboards/qloop.json
"""

from __future__ import annotations

import json
import sys

from cloud.store.queries import Query, query

DATASOURCE = {"type": "influxdb", "uid": "qloop-influxdb"}
#: (query name, panel title, panel type, grid position x, y, w, h)
PANELS = (
    (
        "batch_supply_trend",
        "Batch supply-air trend (${model} / ${batch})",
        "timeseries",
        0,
        0,
        12,
        9,
    ),
    ("batch_findings", "Findings per batch (${model})", "table", 12, 0, 12, 9),
    ("device_noise_history", "Noise by fan speed (${device})", "timeseries", 0, 9, 12, 9),
    ("device_field", "${field} of ${device}", "timeseries", 12, 9, 12, 9),
)
VARIABLES = {  # template variable → default value
    "model": "KFR-35GW",
    "batch": "B20240517",
    "device": "ac-000001",
    "field": "supply_c",
}


def bound(q: Query) -> str:
    """The query's text with its parameters bound to the dashboard."""
    lines = []
    for p in q.params:
        if p.type == "time":
            value = "v.timeRangeStart" if p.name == "start" else "v.timeRangeStop"
        elif p.type == "duration":
            value = "v.windowPeriod"
        elif p.name == "bucket":
            value = '"qloop"'
        else:
            value = f'"${{{p.name}}}"'
        lines.append(f"{p.name} = {value}")
    return "\n".join(lines) + "\n\n" + q.text


def dashboard() -> dict:
    panels = []
    for i, (name, title, kind, x, y, w, h) in enumerate(PANELS, 1):
        panels.append({
            "id": i, "type": kind, "title": title, "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "targets": [{"refId": "A", "datasource": DATASOURCE, "query": bound(query(name))}],
            "description": f"cloud/store/queries/{name}.flux",
        })  # fmt: skip
    variables = [
        {"name": n, "label": n, "type": "textbox", "query": v,
         "current": {"text": v, "value": v}, "hide": 0}
        for n, v in VARIABLES.items()
    ]  # fmt: skip
    return {
        "uid": "qloop-fleet",
        "title": "qloop fleet",
        "tags": ["qloop"],
        "timezone": "browser",
        "schemaVersion": 39,
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "templating": {"list": variables},
        "panels": panels,
    }


def main() -> None:
    json.dump(dashboard(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
