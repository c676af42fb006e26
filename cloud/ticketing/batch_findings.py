"""Batch findings in: a batch that stands out by its units' shifts (the pooled batch test), or
whose units are short of their model's other batches (the peer level test), opens or
strengthens its batch ticket.

Contract extension, beside unit findings: the worker's pooled batch test
(``cloud/anomaly/pooled.py``) hands a :class:`~cloud.anomaly.pooled.BatchFinding` to
:func:`record_batch_finding` (``TicketService.record_batch_finding``) as it hands a unit's
:class:`~cloud.anomaly.base.Finding` to ``intake.record_finding``. In one transaction, under the
(model, fault) lock the unit findings take, ``decisions.evaluate_pooled`` opens the batch ticket
(its evidence: ``opened_by`` names the pooled test, ``pooled`` holds its numbers and the units
beyond its level) or adds the evidence to the open one. A batch with no registered unit opens
nothing; the same finding twice changes nothing. A
:class:`~cloud.anomaly.peers.PeerFinding` comes the same way: its evidence, marked
``"kind": "peers"``, is kept under the ticket's ``pooled`` as the shift test's is.
"""

from __future__ import annotations

from cloud.anomaly.peers import PeerFinding
from cloud.anomaly.pooled import BatchFinding
from cloud.ticketing.context import Context, serialize
from cloud.ticketing.decisions import evaluate_pooled
from cloud.ticketing.history import TicketChange


def record_batch_finding(ctx: Context, finding: BatchFinding | PeerFinding) -> list[TicketChange]:
    """Open or strengthen the batch ticket ``finding`` calls for; the changes made."""
    now = ctx.now()
    with ctx.sessions.begin() as s:
        serialize(s, finding.model, finding.fault)
        return evaluate_pooled(
            s, ctx.policy, finding.as_evidence(), finding.model, finding.batch, now
        )
