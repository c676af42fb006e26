"""People's feedback on the pages: customer-service staff register a complaint, see at once what
the classifier and the unit's telemetry made of it, and correct the classification.

Routes (:func:`feedback_router`, role ``service`` or higher, forms from other sites refused as
the login form's are): ``GET /feedback/new``, ``POST /feedback`` (checked by the API's own
:class:`FeedbackCreate`, filed by :meth:`TicketService.file_feedback`, then its ticket is shown)
and ``POST /tickets/{id}/classification`` (a person's correction). The time received is a
``datetime-local`` field plus an explicit UTC offset, default ``+08:00``: the pages run no script
(their Content-Security-Policy forbids it), so the browser's time zone cannot be read, and most
complaints are taken in China Standard Time.

A ticket's feedback is rendered by ``feedback_view.py``.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
import re
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from cloud.feedback.extract import DEMANDS
from cloud.feedback.labelled import CHANNELS
from cloud.feedback.sources import MAX_TEXT
from cloud.ticketing.api.schemas import ClassificationCorrect, FeedbackCreate
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.errors import InvalidFeedback, TicketConflict, TicketNotFound
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth
from cloud.ticketing.web.forms import posted, problem
from cloud.ticketing.web.i18n import names, tr
from cloud.ticketing.web.layout import esc, html, page, select_options
from contract.errors import QloopError

ROLE = "service"  # the least role that may file feedback and correct its classification
DEFAULT_OFFSET = "+08:00"
#: The form's fields in order: name, input type, extra attributes (labels: :func:`_labels`).
_FORM_LAYOUT = (
    ("customer_name", "text", ' maxlength="200"'),
    ("contact", "text", ' maxlength="200"'),
    ("model", "text", ' maxlength="64"'),
    ("serial", "text", ' maxlength="128"'),
    ("purchase_date", "date", ""),
    ("received_at", "datetime-local", ""),
    ("utc_offset", "text", ' list="offsets" size="6"'),
    ("channel", "select", " required"),
    ("demand", "select", ""),
    ("text", "textarea", " required"),
)
FORM_FIELDS = tuple(f[0] for f in _FORM_LAYOUT)


def _labels() -> dict[str, tuple[str, str]]:
    """Each field's label and hint in the viewer's language."""
    return {
        "customer_name": (tr("Customer"), ""),
        "contact": (tr("Contact"), tr("phone or e-mail")),
        "model": (tr("Model"), ""),
        "serial": (tr("Serial number"), ""),
        "purchase_date": (tr("Purchase date"), ""),
        "received_at": (tr("Time received"), tr("empty: now")),
        "utc_offset": (tr("UTC offset"), tr("China +08:00")),
        "channel": (tr("Channel"), ""),
        "demand": (tr("What the customer wants"), ""),
        "text": (tr("The customer's own words"), tr("verbatim")),
    }


def _choices(field: str) -> tuple[dict[str, str], str]:
    """A select's options (value → name) and its blank choice."""
    if field == "channel":
        return names("channel", CHANNELS), tr("— choose —")
    return names("demand", DEMANDS), tr("— not said —")


_OFFSET = re.compile(r"[+-](?:0\d|1[0-4]):[0-5]\d")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
#: The schema's error locations as the form's field names.
_FIELD_OF_LOC = {("customer", "name"): "customer_name", ("customer", "contact"): "contact"}


class FormInvalid(QloopError, ValueError):
    """A complaint form that cannot be filed; ``errors`` maps a field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


# --- reading the complaint form -----------------------------------------------------------------


def _received_at(form: Mapping[str, str], errors: dict[str, str]) -> str | None:
    """The received time as ISO 8601 with its offset, None for "now"; faults go to ``errors``."""
    local = form.get("received_at", "").strip()
    offset = form.get("utc_offset", "").strip() or DEFAULT_OFFSET
    if not _OFFSET.fullmatch(offset):
        errors["utc_offset"] = tr(
            "write the offset from UTC as +08:00 or -05:00, not {value}", value=repr(offset)
        )
    if local and not _LOCAL_TIME.fullmatch(local):
        errors["received_at"] = tr(
            "use the date and time picker (2024-05-10T14:30), not {value}", value=repr(local)
        )
    return local + offset if local and not errors else None


def complaint_from_form(form: Mapping[str, str]) -> FeedbackIn:
    """The complaint a form describes, checked by the API's :class:`FeedbackCreate`; raises
    :class:`FormInvalid` naming each wrong field. The customer's words are kept verbatim."""
    errors: dict[str, str] = {}
    one = {k: form.get(k, "").strip() or None for k in FORM_FIELDS}
    customer = {"name": one["customer_name"], "contact": one["contact"]}
    body = {k: one[k] for k in ("channel", "model", "serial", "purchase_date", "demand")}
    text = form.get("text", "").replace("\r\n", "\n")  # a form sends a textarea's lines as CRLF
    body |= {"text": text, "received_at": _received_at(form, errors)}
    body["customer"] = customer if any(customer.values()) else None
    try:
        valid = FeedbackCreate.model_validate(body)
    except ValidationError as exc:
        for e in exc.errors():
            loc = tuple(str(part) for part in e["loc"])
            field = _FIELD_OF_LOC.get(loc[:2], loc[0] if loc else "form")
            message = {
                "enum": tr("choose the {field} from the list", field=field),
                "string_too_short": tr("write down what the customer said"),
            }.get(e["type"], e["msg"])
            errors.setdefault(field, message)
    if errors:
        raise FormInvalid(errors)
    return FeedbackIn(
        channel=valid.channel.value,
        text=valid.text,
        received_at=valid.received_at,
        customer_name=one["customer_name"],
        contact=one["contact"],
        model=valid.model,
        serial=valid.serial,
        purchase_date=valid.purchase_date,
        demand=None if valid.demand is None else valid.demand.value,
    )


# --- the complaint form -------------------------------------------------------------------------


def _control(name: str, kind: str, value: str, extra: str) -> str:
    if kind == "select":
        choices, blank = _choices(name)
        options = select_options(choices, value, blank)
        return f'<select id="{name}" name="{name}"{extra}>{options}</select>'
    if kind == "textarea":
        tag = f'<textarea id="{name}" name="{name}" rows="6" maxlength="{MAX_TEXT}"{extra}>'
        return f"{tag}{esc(value)}</textarea>"
    return f'<input id="{name}" name="{name}" type="{kind}" value="{esc(value)}"{extra}>'


def complaint_form(values: Mapping[str, str], errors: Mapping[str, str] | None = None) -> str:
    """The form, showing ``values`` and each error beside its field."""
    errors = errors or {}
    fields = []
    labels = _labels()
    for name, kind, extra in _FORM_LAYOUT:
        label, hint = labels[name]
        value = values.get(name, "") or (DEFAULT_OFFSET if name == "utc_offset" else "")
        note = f'<span class="hint">{esc(hint)}</span>' if hint else ""
        if name in errors:
            note += f'<span class="field-error" id="err-{name}">{esc(errors[name])}</span>'
        cls = "field" + (" invalid" if name in errors else "") + (" wide" * (kind == "textarea"))
        fields.append(
            f'<div class="{cls}" data-field="{name}"><label for="{name}">{esc(label)}</label>'
            f"{_control(name, kind, value, extra)}{note}</div>"
        )
    others = " ".join(f"{k}: {v}" for k, v in errors.items() if k not in FORM_FIELDS)
    alert = ""
    if errors:
        correct = esc(tr("Please correct the fields."))
        alert = f'<div class="error" role="alert">{correct} {esc(others)}</div>'
    offsets = "".join(f'<option value="{o}">' for o in ("+08:00", "+00:00", "+09:00", "+07:00"))
    intro = tr(
        "Register a complaint as the quality procedure lists it: it is classified at once and "
        "checked against the unit's telemetry."
    )
    return (
        f'<h1>{esc(tr("New complaint"))}</h1><p class="sub">{esc(intro)}</p>'
        f'{alert}<form class="card complaint" method="post" action="/feedback"'
        f' accept-charset="utf-8">{"".join(fields)}<datalist id="offsets">{offsets}</datalist>'
        f'<button class="primary" id="file-complaint" type="submit">{esc(tr("Register"))}'
        "</button></form>"
    )


def forbidden_page(user: Principal) -> Response:
    """403: the signed-in person's role may not file or correct feedback."""
    why = tr(
        "Registering complaints and correcting their classification needs the role {role} "
        "(customer-service staff) or higher; you are signed in as {name} with the role {own}. "
        "Ask an administrator for a token with that role.",
        role=ROLE, name=user.name, own=user.role,
    )  # fmt: skip
    return problem(user, tr("Not allowed"), why, 403, "/tickets")


# --- routes -------------------------------------------------------------------------------------
def feedback_router(service: TicketService) -> APIRouter:
    """The complaint form and the classification correction over ``service``."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    def form_page(user: Principal, values: dict, errors: dict | None, status: int) -> Response:
        return html(page(tr("New complaint"), complaint_form(values, errors), user=user), status)

    @router.get("/feedback/new")
    def new_complaint(user: User) -> Response:
        return form_page(user, {}, None, 200) if user.can(ROLE) else forbidden_page(user)

    @router.post("/feedback")
    async def file_complaint(request: Request, user: User) -> Response:
        form = await posted(request, user, ROLE, "/feedback/new", forbidden_page)
        if isinstance(form, Response):
            return form
        values = {k: form.get(k, "") for k in FORM_FIELDS}
        try:
            complaint = complaint_from_form(form)
            filed = await run_in_threadpool(service.file_feedback, complaint, actor=user.name)
        except FormInvalid as exc:
            return form_page(user, values, exc.errors, 422)
        except InvalidFeedback as exc:  # what only the service checks (e.g. blank words)
            return form_page(user, values, {exc.field: str(exc)}, 422)
        t = filed.ticket
        query = f"filed={filed.outcome}" + (f"&n={t.repeats}" if filed.outcome == "repeat" else "")
        return RedirectResponse(f"/tickets/{quote(t.id)}?{query}", status_code=303)

    @router.post("/tickets/{ticket_id}/classification")
    async def correct(ticket_id: str, request: Request, user: User) -> Response:
        back = f"/tickets/{quote(ticket_id)}"
        form = await posted(request, user, ROLE, back, forbidden_page)
        if isinstance(form, Response):
            return form
        fields = ("category", "fault", "severity", "note")
        try:
            body = ClassificationCorrect.model_validate({k: form.get(k) or None for k in fields})
            await run_in_threadpool(
                service.correct_classification,
                ticket_id,
                actor=user.name,
                category=body.category.value,
                fault=body.fault,
                severity=body.severity.value,
                note=body.note,
            )
        except ValidationError as exc:
            message = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            return problem(user, tr("Not corrected"), message, 422, back)
        except InvalidFeedback as exc:
            return problem(user, tr("Not corrected"), str(exc), 422, back)
        except TicketNotFound:
            missing = tr("No ticket {id}", id=ticket_id)
            return problem(user, tr("Not found"), missing, 404, "/tickets")
        except TicketConflict as exc:
            return problem(user, tr("Not corrected"), str(exc), 409, back)
        return RedirectResponse(f"{back}?corrected=1", status_code=303)

    return router
