"""The feedback pages through TestClient: customer-service staff register a complaint with the
form, see its automatic classification and the unit's telemetry verdict at once, and correct
the classification; the ticket list shows where tickets came from and keeps a triage queue."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.service import TicketService
from qloop.settings import Settings

ADMIN = "admin-secret"
DAY = 86_400.0
T0 = 1_700_000_000.0
NOW = datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)
WORDS = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"
FORM = {
    "customer_name": "张先生",
    "contact": "138 0013 8000",
    "model": "M1",
    "serial": "SN-ac-0-03",
    "purchase_date": "2026-10-15",
    "received_at": "2026-11-20T14:30",
    "utc_offset": "+08:00",
    "channel": "hotline",
    "text": WORDS,
    "demand": "repair",
}


@pytest.fixture
def app(tmp_path):
    settings = Settings(db=f"sqlite:///{tmp_path / 'pages.db'}", api_token=ADMIN, journal=None)
    return create_app(settings.api(), clock=lambda: NOW)


@pytest.fixture
def svc(app) -> TicketService:
    return app.state.service


@pytest.fixture
def leaking(svc: TicketService) -> str:
    """Batch B0 of M1 loses cooling in 8 of 20 units (an open batch ticket, its id returned);
    batch B1 is healthy. Serials are ``SN-<device>``."""
    for b in range(2):
        for u in range(20):
            device = f"ac-{b}-{u:02d}"
            svc.register_device(
                DeviceRecord(device, "air_conditioner", "M1", f"B{b}", f"SN-{device}", "1.0",
                             T0, T0 + 30 * DAY)
            )  # fmt: skip
    evidence = {"baseline": 11.2, "current": 7.9, "change": -3.3}
    for u in range(8):
        svc.record_finding(
            Finding(f"ac-0-{u:02d}", "cooling_decline", T0 + 30 * DAY, T0, 0.9, evidence)
        )
    (batch,) = svc.tickets(scope="batch").items
    return batch.id


def file(client: TestClient, **change: str):
    return client.post("/feedback", data=FORM | change, follow_redirects=False)


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'id="err-{field}">([^<]*)<', html)
    return found.group(1) if found else None


def test_the_form_is_for_customer_service_and_up(cs: TestClient, viewer: TestClient) -> None:
    r = cs.get("/feedback/new")
    assert r.status_code == 200
    for text in (
        ">Customer<",
        "The customer&#x27;s own words",
        'name="received_at" type="datetime-local"',
        'name="utc_offset" type="text" value="+08:00"',
        '<option value="hotline">hotline',
        '<option value="refund">refund',
        "New complaint",
    ):
        assert text in r.text, text
    zh = cs.get("/feedback/new", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    for text in ('<html lang="zh-CN"', ">客户<", ">客户原话<", '<option value="hotline">热线',
                 '<option value="refund">退货退款', "<h1>登记投诉</h1>",
                 ">登记</button>"):  # fmt: skip
        assert text in zh.text, text
    channels = re.search(r'<select id="channel".*?</select>', r.text, re.S).group(0)
    assert channels.count("<option") == 11  # "choose" and the ten channels
    denied = viewer.get("/feedback/new")
    assert denied.status_code == 403 and "the role viewer" in denied.text
    assert 'id="new-complaint"' not in denied.text  # no nav link where it cannot be used
    assert file(viewer).status_code == 403
    with TestClient(cs.app, base_url="http://qloop.test") as anonymous:
        r = anonymous.get("/feedback/new", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/feedback/new"


def test_a_filed_complaint_shows_its_classification_and_the_data_at_once(
    cs: TestClient, leaking: str
) -> None:
    words = WORDS + "\r\n<script>alert('x')</script> & more"
    r = file(cs, text=words)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert re.fullmatch(r"/tickets/PF202611\d{3}\?filed=opened", location)
    html = cs.get(location).text
    assert "Registered as this new ticket" in html
    card = re.search(r'<section class="card" id="feedback">.*?</section>', html, re.S).group(0)
    classification = re.search(r'<dl class="facts one" id="classification">.*?</dl>', card).group(0)
    for text in ("performance", "cooling_decline", "sev-II", "confidence"):
        assert text in classification, text
    assert 'id="needs-triage"' not in card
    verdict = re.search(r'<p class="verdict v-confirms"[^>]*>(.*?)</p>', card).group(1)
    assert "telemetry confirms" in verdict and "fell from 11.2 to 7.9 K" in verdict
    assert f'<a id="parent" href="/tickets/{leaking}">{leaking}</a>' in card
    assert (
        "<script>" not in html
        and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    )
    assert WORDS + "\n&lt;script&gt;" in card  # verbatim, the form's CRLF as a line break
    for text in ("hotline", "张先生", "138 0013 8000", "wants repair", "18 °C (supply)",
                 "2026-11-20 06:30 UTC"):  # fmt: skip
        assert text in card, text
    # the same page for a reader of Chinese: names translated, times in China Standard Time
    zh = cs.get(location, headers={"Accept-Language": "zh-CN"}).text
    classified = re.search(r'id="classification">.*?</dl>', zh).group(0)
    for text in ("性能", "制冷下降", "置信度", "研发部", "普通"):
        assert text in classified, text
    for text in ("热线", "诉求：", ">维修<", "2026-11-20 14:30 CST", "投诉记录"):
        assert text in zh, text
    assert "<dd>ac-0-03</dd>" in card and "<dd>B0</dd>" in card
    assert "on unit ac-0-03 (M1, batch B0), reported via hotline" in html
    assert '<form class="filters correct"' in card  # service may correct
    # the batch ticket counts it, with a link to the child
    batch = cs.get(f"/tickets/{leaking}").text
    child = location.split("?")[0]
    assert "1 complaint(s) from channels: hotline 1" in batch and f'href="{child}"' in batch


def test_a_second_complaint_is_merged_as_a_repeat(cs: TestClient, leaking: str) -> None:
    first = file(cs).headers["location"].split("?")[0]
    again = file(
        cs, channel="ecommerce", text="还是不制冷，出风18度", received_at="2026-11-21T09:00"
    )
    assert again.headers["location"] == f"{first}?filed=repeat&n=1"
    html = cs.get(again.headers["location"]).text
    assert "Merged into this open ticket as repeat #1" in html
    assert "Complaints (2)" in html and "ecommerce" in html and "repeat complaints: 1" in html
    same = file(
        cs, channel="ecommerce", text="还是不制冷，出风18度", received_at="2026-11-21T09:00"
    )
    assert same.headers["location"] == f"{first}?filed=duplicate"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"text": ""}, "text", "write down what the customer said"),
        ({"text": "  \n "}, "text", "the text is empty"),
        ({"channel": "carrier-pigeon"}, "channel", "choose the channel from the list"),
        ({"channel": ""}, "channel", "choose the channel from the list"),
        ({"received_at": "yesterday"}, "received_at", "use the date and time picker"),
        ({"received_at": "2026-13-45T10:00"}, "received_at", "month value is outside"),
        ({"received_at": "1970-01-01T00:00"}, "received_at", "between 2000 and 2100"),
        ({"utc_offset": "8"}, "utc_offset", "+08:00 or -05:00"),
        ({"purchase_date": "2026-02-30"}, "purchase_date", "day value is outside"),
        ({"demand": "free stuff"}, "demand", "choose the demand from the list"),
        ({"contact": "1" * 300}, "contact", "at most 200 characters"),
    ],
)
def test_a_bad_form_comes_back_with_the_input_kept(cs: TestClient, change, field, message) -> None:
    r = file(cs, **change)
    assert r.status_code == 422, r.text
    assert message in (field_error(r.text, field) or ""), r.text
    assert 'role="alert"' in r.text
    kept = {"customer_name": "张先生", "serial": "SN-ac-0-03"} | {
        k: v for k, v in change.items() if k not in ("text", "channel", "demand")
    }
    for name, value in kept.items():
        assert f'name="{name}" type="' in r.text and f'value="{value}"' in r.text, name
    if field != "text":
        assert f">{WORDS}</textarea>" in r.text  # the words typed are not lost
    if change.get("channel") == "carrier-pigeon":
        assert "selected" not in re.search(r'<select id="channel".*?</select>', r.text, re.S)[0]
    assert cs.get("/tickets", params={"source": "feedback"}).text.count('class="ticket') == 0


def test_cross_site_and_oversized_posts_are_refused(cs: TestClient) -> None:
    r = cs.post("/feedback", data=FORM, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "cross-site form refused" in r.text
    big = cs.post("/feedback", data=FORM | {"text": "啊" * 100_000})
    assert big.status_code == 400 and "KiB" in big.text
    raw = cs.post(
        "/feedback",
        content="channel=hotline&text=空调".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code == 400
    gbk = cs.post(  # percent-escapes of GBK bytes: refused, not stored garbled
        "/feedback",
        content="channel=hotline&text=%BF%D5%B5%F7",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert gbk.status_code == 400 and "not URL-encoded UTF-8" in gbk.text
    assert "PF2026" not in cs.get("/tickets").text  # nothing was filed


def test_a_person_corrects_the_classification_with_the_form(
    cs: TestClient, viewer: TestClient, leaking: str
) -> None:
    page = cs.get(file(cs, serial="", text="外机运行时嗡嗡响得厉害").headers["location"]).text
    tid = re.search(r'<h1 id="ticket-id">(\S+)', page).group(1)
    form = re.search(r'<form class="filters correct".*?</form>', page, re.S).group(0)
    faults = re.findall(
        r'<option value="([a-z_]+)"', re.search(r'name="fault">.*?</select>', form).group(0)
    )
    assert set(faults) == {
        "cooling_decline",
        "noise_rise",
        "vibration_rise",
        "overcurrent",
        "overheat",
        "anomaly",
    }
    assert '<optgroup label="workmanship">' in form
    body = {
        "category": "workmanship",
        "fault": "vibration_rise",
        "severity": "II",
        "note": "外机振动",
    }
    r = cs.post(f"/tickets/{tid}/classification", data=body, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{tid}?corrected=1"
    html = cs.get(r.headers["location"]).text
    classification = re.search(r'id="classification">.*?</dl>', html).group(0)
    assert "workmanship" in classification and "vibration_rise" in classification
    assert "sev-II" in classification and "<dd>service-1</dd>" in classification
    assert "Classification corrected" in html and "<b>reclassified</b>" in html
    assert 'data-field="lead department">Production' in html
    wrong = cs.post(f"/tickets/{tid}/classification", data=body | {"category": "service"})
    assert (
        wrong.status_code == 422
        and "fault &#x27;vibration_rise&#x27; is not in category" in wrong.text
    )
    unknown = cs.post(f"/tickets/{tid}/classification", data=body | {"severity": "IV"})
    assert unknown.status_code == 422 and "severity" in unknown.text
    batch = cs.post(f"/tickets/{leaking}/classification", data=body)
    assert batch.status_code == 422 and "did not come from feedback" in batch.text
    assert cs.post("/tickets/PF209901999/classification", data=body).status_code == 404
    assert viewer.post(f"/tickets/{tid}/classification", data=body).status_code == 403
    assert 'class="filters correct"' not in viewer.get(f"/tickets/{tid}").text
    evil = cs.post(
        f"/tickets/{tid}/classification", data=body, headers={"Origin": "http://x.example"}
    )
    assert evil.status_code == 403


def test_a_customer_ticket_page_has_no_none(cs: TestClient) -> None:
    r = file(cs, serial="SN-NOBODY", model="", contact="", customer_name="", purchase_date="",
             received_at="", demand="")  # fmt: skip
    html = cs.get(r.headers["location"]).text
    assert "None" not in html
    assert "from a customer via hotline" in html
    assert "serial matches no unit" in html and "names no registered unit" in html
    assert re.search(r'data-field="model">—<', html) and re.search(r'data-field="batch">—<', html)
    assert re.search(r'data-field="affected units">—<', html)
    assert "2026-11-22 10:00 UTC" in html  # received: now
    assert 'id="statistics"' not in html  # no batch statistics for one customer's complaint


def test_the_list_shows_the_source_and_keeps_a_triage_queue(
    app, cs: TestClient, leaking: str
) -> None:
    sure = cs.get(file(cs).headers["location"]).text
    sure_id = re.search(r'<h1 id="ticket-id">(\S+)', sure).group(1)
    unsure = file(cs, serial="", contact="", text="还行吧，有点问题", channel="survey")
    unsure_id = unsure.headers["location"].split("/")[2].split("?")[0]
    svc: TicketService = app.state.service
    assert svc.get_ticket(unsure_id).classification["needs_triage"]  # the classifier is unsure
    listing = cs.get("/tickets").text
    assert 'id="triage-queue" href="/tickets?needs_triage=true"' in listing
    row = re.search(rf'data-id="{sure_id}".*?</tr>', listing, re.S).group(0)
    assert "hotline" in row and "triage" not in row
    unsure_row = re.search(rf'data-id="{unsure_id}".*?</tr>', listing, re.S).group(0)
    assert "survey" in unsure_row and '<span class="badge triage">' in unsure_row
    assert "telemetry" in re.search(rf'data-id="{leaking}".*?</tr>', listing, re.S).group(0)
    feedback = cs.get("/tickets", params={"source": "feedback"}).text
    assert set(re.findall(r'<tr class="ticket[^"]*" data-id="([^"]+)"', feedback)) == {
        sure_id,
        unsure_id,
    }
    queue = cs.get("/tickets", params={"needs_triage": "true"}).text
    assert re.findall(r'<tr class="ticket[^"]*" data-id="([^"]+)"', queue) == [unsure_id]
    page = cs.get(f"/tickets/{unsure_id}").text
    assert 'id="needs-triage"' in page  # a person must confirm whatever it guessed
    assert '<option value="true" selected>yes, needs triage' in queue
    bad = cs.get("/tickets", params={"needs_triage": "maybe"})
    assert bad.status_code == 422 and "unknown needs_triage" in bad.text


def test_a_complaint_about_what_the_data_already_showed_repeats_its_ticket(
    svc: TicketService, cs: TestClient, leaking: str
) -> None:
    evidence = {"baseline": 40.0, "current": 47.5}
    svc.record_finding(Finding("ac-1-04", "noise_rise", T0 + 30 * DAY, T0, 0.8, evidence))
    (unit_ticket,) = svc.tickets(scope="device", status="open", fault="noise_rise").items
    r = file(cs, serial="SN-ac-1-04", text="外机运行时嗡嗡响得厉害", contact="")
    assert r.headers["location"] == f"/tickets/{unit_ticket.id}?filed=repeat&n=1"
    html = cs.get(r.headers["location"]).text
    assert "Merged into this open ticket as repeat #1" in html
    card = re.search(r'<section class="card" id="feedback">.*?</section>', html, re.S).group(0)
    assert "外机运行时嗡嗡响得厉害" in card and "Complaints (1)" in card
    assert 'id="classification"' not in card  # a telemetry ticket: nothing to correct
    assert 'id="statistics"' in html and "None" not in html
