"""``/api/v1/feedback``: people's feedback in (CONTRACTS.md §4.1), and a person's correction of
its automatic classification (``/api/v1/tickets/{id}/classification``).

Customer-service staff (role ``service``) may do both; they read tickets like viewers and cannot
move them along the lifecycle.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from cloud.ticketing.api.deps import CustomerService, ServiceDep
from cloud.ticketing.api.refusals import answering
from cloud.ticketing.api.routes.tickets import NOT_FOUND, _error
from cloud.ticketing.api.schemas import ClassificationCorrect, FeedbackCreate, TicketDetailPublic
from cloud.ticketing.complaints import FeedbackIn

router = APIRouter(tags=["feedback"], responses={401: _error("missing or invalid bearer token")})
_ROLE = {403: _error("the token's role may not file feedback (needs service or higher)")}


@router.post(
    "/feedback",
    response_model=TicketDetailPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_ROLE,
        200: {
            "model": TicketDetailPublic,
            "description": "a repeat of an open ticket (or the same feedback filed before): "
            "that ticket",
        },
    },
)
def file_feedback(
    body: FeedbackCreate, response: Response, service: ServiceDep, user: CustomerService
) -> TicketDetailPublic:
    """File one piece of feedback: 201 with the ticket it opened, or 200 with the open ticket
    it repeats. The ticket carries the automatic classification; ``needs_triage`` asks a person
    to confirm it."""
    customer = body.customer
    feedback = FeedbackIn(
        channel=body.channel.value,
        text=body.text,
        received_at=body.received_at,
        customer_name=customer.name if customer else None,
        contact=customer.contact if customer else None,
        model=body.model,
        serial=body.serial,
        device=body.device,
        purchase_date=body.purchase_date,
        demand=None if body.demand is None else body.demand.value,
    )
    with answering():
        filed = service.file_feedback(feedback, actor=user.name)
    if not filed.created:
        response.status_code = status.HTTP_200_OK
    return TicketDetailPublic.model_validate(filed.ticket)


@router.post(
    "/tickets/{ticket_id}/classification",
    response_model=TicketDetailPublic,
    responses={
        **NOT_FOUND,
        **_ROLE,
        409: _error("the unit already has an open ticket for that fault"),
        422: _error("a fault outside the category, or a ticket not from feedback", invalid=True),
    },
)
def correct_classification(
    ticket_id: str, body: ClassificationCorrect, service: ServiceDep, user: CustomerService
) -> TicketDetailPublic:
    """Correct a feedback ticket's classification: it is regraded and rerouted, and the
    correction is kept to retrain the classifier (``qloop feedback retrain``)."""
    with answering():
        ticket = service.correct_classification(
            ticket_id,
            actor=user.name,
            category=body.category.value,
            fault=body.fault,
            severity=body.severity.value,
            note=body.note,
        )
    return TicketDetailPublic.model_validate(ticket)
