"""TicketService: detector findings in, quality tickets out; one façade over the modules that
do the work.

The service holds no state beyond the database: it builds one :class:`~cloud.ticketing.context.
Context` (session factories, clock, policy, notifier) and hands it to

- ``intake.py``: findings and birth messages in (:meth:`~TicketService.record_finding`,
  :meth:`~TicketService.register_device`, :meth:`~TicketService.touch_devices`), and
  ``batch_findings.py`` the pooled batch test's (:meth:`~TicketService.record_batch_finding`);
  ``decisions.py`` decides which tickets the data calls for and ``opening.py`` opens, refreshes
  and folds them;
- ``complaints.py``: feedback from people in (:meth:`~TicketService.file_feedback`) and people's
  corrections of its classification; ``imports.py``: bulk imports of feedback exports;
- ``queries.py``: pages of tickets and one ticket with its history and fix (``views.py``);
- ``actions.py``: what people do (lifecycle moves, comments, the fix record); ``verdicts.py``:
  the engineer's check of a fix without units' data, and the customer's callback score;
- ``capa.py`` (with ``measures.py``): corrective and preventive measures, the cause analysis,
  and their reminders;
- ``verification.py``: whether a fix holds, from the units' data;
- ``overdue.py``: SLA checks and the escalation outbox;
- ``tokens.py``: API tokens and roles.

History entries and the change records returned to the worker are written by ``history.py``; the
errors are in ``errors.py``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine

from cloud.ticketing import (
    actions,
    batch_findings,
    capa,
    cases,
    complaints,
    identity,
    imports,
    intake,
    overdue,
    queries,
    tokens,
    verdicts,
)
from cloud.ticketing.context import ClassifierSource, Clock, Context
from cloud.ticketing.escalation import Notifier
from cloud.ticketing.policy import TicketPolicy

P = ParamSpec("P")
R = TypeVar("R")
_SELF = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)


def _forward(
    job: Callable[Concatenate[Context, P], R],
) -> Callable[Concatenate[TicketService, P], R]:
    """A method of the service that calls ``job`` with the service's context; it keeps the
    job's signature (less the context) and docstring, so each is written once, beside the code."""

    @functools.wraps(job)
    def method(self: TicketService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return job(self._ctx, *args, **kwargs)

    signature = inspect.signature(job)
    _context, *rest = signature.parameters.values()
    method.__signature__ = signature.replace(parameters=[_SELF, *rest])  # type: ignore[attr-defined]
    return method


class TicketService:
    """Turns findings into tickets and serves them; holds no state beyond the database."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        policy: TicketPolicy | None = None,
        *,
        notifier: Notifier | None = None,
        classifier: ClassifierSource | None = None,
    ) -> None:
        self._ctx = Context(engine, clock, policy or TicketPolicy(), notifier, classifier)

    @property
    def engine(self) -> Engine:
        return self._ctx.engine

    @property
    def policy(self) -> TicketPolicy:
        return self._ctx.policy

    @property
    def classifier(self) -> ClassifierSource:
        """Where the feedback classifier comes from (call it for the model)."""
        return self._ctx.classifier

    @property
    def notifier(self) -> Notifier | None:
        return self._ctx.notifier

    def now(self) -> datetime:
        """The service's wall clock (injected)."""
        return self._ctx.now()

    # devices and findings in, tickets opened and updated
    register_device = _forward(intake.register_device)
    touch_devices = _forward(intake.touch_devices)
    device_identities = _forward(identity.identities)
    record_finding = _forward(intake.record_finding)
    record_batch_finding = _forward(batch_findings.record_batch_finding)  # the pooled test's
    identity_changes = _forward(identity.identity_changes)  # births announcing another batch
    decide_identity_change = _forward(identity.decide)
    # people's feedback in
    file_feedback = _forward(complaints.file_feedback)
    correct_classification = _forward(complaints.correct)
    import_feedback = _forward(imports.import_feedback)
    # reading
    tickets = _forward(queries.tickets)
    get_ticket = _forward(queries.get_ticket)
    similar_cases = _forward(cases.similar_cases)  # past cases to learn from
    search_cases = _forward(cases.search_cases)
    # people's actions
    transition = _forward(actions.transition)
    comment = _forward(actions.comment)
    follow_up = _forward(verdicts.follow_up)
    check_fix = _forward(verdicts.check_fix)
    # corrective and preventive measures, cause analysis
    add_measure = _forward(capa.add_measure)
    update_measure = _forward(capa.update_measure)
    set_cause = _forward(capa.set_cause)
    measures = _forward(capa.list_measures)
    measure_figures = _forward(capa.department_figures)
    record_fix = _forward(actions.record_fix)
    # SLA clocks and escalations
    check_sla = _forward(overdue.check_sla)
    # tokens
    ensure_token = _forward(tokens.ensure_token)
    bootstrap_token = _forward(tokens.bootstrap_token)
    create_token = _forward(tokens.create_token)
    list_tokens = _forward(tokens.list_tokens)
    revoke_token = _forward(tokens.revoke_token)
    check_token = _forward(tokens.check_token)
    authenticate = _forward(tokens.authenticate)
    # the pages' sign-in sessions
    start_session = _forward(tokens.start_session)
    session_user = _forward(tokens.session_user)
    end_session = _forward(tokens.end_session)
