"""Reading Prometheus text in tests: a GET that returns the status and body whatever the status
(0 and "" when nothing answers), and the samples keyed by (name, sorted labels)."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def samples(body: str) -> dict[tuple[str, tuple], float]:
    """``{(name, ((label, value), ...)): value}``; an unlabelled sample's key is ``(name, ())``."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
