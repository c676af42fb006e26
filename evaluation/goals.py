"""Issue 15's three goals for an evaluation run, in one place: the suite (``suite.py``), the
scoring's batch table (``scoring.py``) and the accuracy benchmark (``benchmarks/accuracy.py``)
judge against these."""

from __future__ import annotations

RECALL_GOAL = 0.95  # 15 % capacity losses found within 48 h
FALSE_GOAL = 1.0  # false tickets (or findings) per 1,000 healthy device-days, per fault
RATIO_GOAL = 0.33  # qloop's batch ticket within a third of the static rule's delay
