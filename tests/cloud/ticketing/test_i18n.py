"""Every page in Chinese and English: the catalogue covers the pages' words and the vocabulary,
the language and time zone are chosen as documented, and a Chinese page has no English left in
its own words (data — ids, models, what people typed — is shown as it is)."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.feedback.extract import DEMANDS
from cloud.feedback.labelled import CHANNELS
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.corroboration import WATCHED
from cloud.ticketing.history import HistoryKind
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.measures import DEPARTMENTS, FISHBONE, MOVES, TERMS
from cloud.ticketing.targets import FIGURES
from cloud.ticketing.web import evidence, i18n, pages, ticket_list, zh_cn
from cloud.ticketing.web.i18n import for_lang, name, negotiate, tr, use
from contract.faults import CATEGORIES, FAULTS

WEB = Path(i18n.__file__).parent
ROLES = ("viewer", "service", "engineer", "admin")


def _literals() -> dict[str, str]:
    """Every string literal given to ``tr`` in the pages' modules, with where it is."""
    found = {}
    for path in sorted(WEB.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tr" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.setdefault(first.value, f"{path.name}:{node.lineno}")
    return found


def test_every_sentence_of_the_pages_has_its_chinese() -> None:
    said = _literals()
    assert len(said) > 250  # the scan found the pages' words, not nothing
    tables = [*pages.STAT_LABELS.values(), *ticket_list.FILTER_LABELS.values()]
    tables += evidence.SIGNAL_LABELS
    tables += [quantity for quantity, _ in WATCHED.values()]
    missing = [f"{text!r} ({where})" for text, where in said.items() if text not in zh_cn.MESSAGES]
    missing += [repr(text) for text in tables if text not in zh_cn.MESSAGES]
    assert not missing, "no Chinese in zh_cn.MESSAGES for:\n" + "\n".join(missing)
    for english, chinese in zh_cn.MESSAGES.items():  # same placeholders, so .format() fills both
        assert set(re.findall(r"{(\w+)}", english)) == set(re.findall(r"{(\w+)}", chinese)), english


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("fault", FAULTS), ("category", CATEGORIES), ("severity", ("I", "II", "III")),
        ("status", [s.value for s in Status]), ("department", DEPARTMENTS),
        ("channel", CHANNELS), ("demand", DEMANDS), ("role", ROLES),
        ("action", [k.value for k in HistoryKind]), ("measure_status", MOVES),
        ("kind", {k for kinds in TERMS.values() for k in kinds}), ("term", TERMS),
        ("branch", FISHBONE), ("figure", FIGURES), ("priority", ("urgent", "normal", "low")),
    ],
)  # fmt: skip
def test_every_name_of_the_vocabulary_is_translated(kind: str, values) -> None:
    with use(for_lang("zh-CN")):
        missing = [v for v in values if name(kind, v) == v]
    assert not missing, f"{kind}: no Chinese name for {missing}"


def test_the_language_is_the_query_then_the_cookie_then_the_browser() -> None:
    assert negotiate().lang == "en"  # a script: no preference
    assert negotiate(accept="zh-CN,zh;q=0.9,en;q=0.8").lang == "zh-CN"
    assert negotiate(accept="en-US,en;q=0.9,zh;q=0.8").lang == "en"
    assert negotiate(accept="zh-TW").lang == "zh-CN"  # the only Chinese there is
    assert negotiate(cookie="en", accept="zh-CN").lang == "en"
    assert negotiate(asked="zh-CN", cookie="en", accept="en").lang == "zh-CN"
    assert negotiate(asked="klingon", cookie="bogus", accept="de, *").lang == "en"
    assert negotiate(accept="zh").tz.key == "Asia/Shanghai" and negotiate().tz.key == "UTC"
    assert negotiate(tz_asked="Europe/Berlin", tz_cookie="UTC").tz.key == "Europe/Berlin"
    for bad in ("../../etc/passwd", "Mars/Olympus", "x" * 200, ""):
        assert negotiate(accept="zh", tz_asked=bad).tz.key == "Asia/Shanghai", bad


def test_a_hostile_query_or_cookie_is_no_preference_not_an_error(app) -> None:
    with TestClient(app) as c:
        crowded = "&".join(f"f{i}=x" for i in range(100)) + "&lang=zh-CN"
        assert c.get(f"/login?{crowded}").status_code == 200
        r = c.get("/login", headers={"Cookie": 'qloop_lang="zh-CN; qloop_tz=\\x00;;='})
        assert r.status_code == 200 and '<html lang="en">' in r.text


def test_times_are_shown_in_the_viewers_zone_naming_it() -> None:
    at = datetime(2024, 5, 17, 8, 0, tzinfo=UTC)
    with use(for_lang("zh-CN")):
        assert i18n.clock(at) == "2024-05-17 16:00 CST"
    with use(i18n.Locale("en", i18n.zone("America/New_York"))):
        assert i18n.clock(at) == "2024-05-17 04:00 EDT"
    with use(i18n.Locale("en", i18n.zone("Asia/Kolkata"))):
        assert i18n.clock(at) == "2024-05-17 13:30 IST"
    assert i18n.clock(at) == "2024-05-17 08:00 UTC"  # outside a request


def test_a_missing_translation_shows_the_english_not_an_error() -> None:
    with use(for_lang("zh-CN")):
        assert tr("a sentence nobody translated {n}", n=2) == "a sentence nobody translated 2"
        assert name("fault", "new_detector_fault") == "new_detector_fault"


# --- the pages ----------------------------------------------------------------------------------
PAGES = ("/dashboard", "/tickets", "/tickets/{batch}", "/tickets/{complaint}", "/tickets/{leak}",
         "/tickets/{healthy}", "/feedback/new", "/reports/monthly", "/cases?q=噪音",
         "/login")  # fmt: skip
#: English that may stay on a Chinese page: the product's name, units and the contract's codes.
ALLOWED = re.compile(
    r"qloop|API|PDF|UTC|CST|ISO|webhook|TOP\d|ΔT|dB|KiB|p-value|5-Why|n=|--targets|[A-Z][a-z]+/"
    r"[A-Z][a-z_]+|English"
)


def _english_runs(html: str) -> list[str]:
    """Runs of three or more English words in the page's own text (not in data)."""
    body = re.sub(
        r"<(script|style|select|datalist|blockquote|time)\b.*?</\1>", " ", html, flags=re.S
    )
    body = re.sub(r'<(li|div) class="(meta|complaint)".*?</\1>', " ", body, flags=re.S)
    people = "|".join(("transition", "comment", "followup"))  # their notes are as typed
    body = re.sub(rf'<li data-action="(?:{people})">.*?</li>', " ", body, flags=re.S)
    text = unescape(re.sub(r"<[^>]+>", "\n", body))
    runs = re.findall(r"[A-Za-z][A-Za-z'’-]+(?:[ ,;:]+[A-Za-z][A-Za-z'’-]+){2,}", text)
    return [r for r in runs if not ALLOWED.search(r)]


@pytest.fixture
def tickets(app, seeded) -> dict[str, str]:
    """A batch ticket of the seeded fleet, a complaint naming no unit, one about a leaking unit
    (the data confirms it) and one about a healthy unit (the data is normal)."""
    svc = app.state.service
    batch = next(t for t in svc.tickets(scope="batch", limit=10).items)
    words = "空调制冷效果差，出风口温度18℃"
    filed = {
        key: svc.file_feedback(
            FeedbackIn(channel="hotline", text=words, device=device, contact=contact), actor="cs"
        ).ticket.id
        for key, device, contact in [
            ("complaint", None, "1"),
            ("leak", "ac-0-01", "2"),
            ("healthy", "ac-3-05", "3"),
        ]  # fmt: skip
    }
    verdicts = {
        k: svc.get_ticket(filed[k]).evidence["telemetry"]["status"] for k in ("leak", "healthy")
    }
    assert verdicts == {"leak": "confirms", "healthy": "normal"}
    return {"batch": batch.id, **filed}


def test_every_page_reads_in_chinese(app, tickets) -> None:
    with TestClient(app, base_url="http://qloop.test") as c:
        c.get("/lang", params={"to": "zh-CN", "next": "/login"})
        assert "<h1>登录</h1>" in c.get("/login").text
        c.post("/login", data={"token": "admin-secret"}, follow_redirects=False)
        for path in PAGES:
            r = c.get(path.format(**tickets))
            assert r.status_code == 200, (path, r.status_code)
            assert '<html lang="zh-CN">' in r.text, path
            leftover = _english_runs(r.text)
            assert not leftover, f"{path}: English left on a Chinese page: {leftover[:8]}"
        english = c.get("/dashboard", params={"lang": "en"}).text
        assert '<html lang="en">' in english and _english_runs(english)  # the check can fail


def test_the_switch_remembers_the_choice_and_goes_back_only_to_this_site(app, tickets) -> None:
    with TestClient(app, base_url="http://qloop.test") as c:
        c.post("/login", data={"token": "admin-secret"}, follow_redirects=False)
        page = c.get(f"/tickets/{tickets['batch']}").text
        link = re.search(r'id="lang-zh-CN"[^>]*href="([^"]+)"', page).group(1)
        assert unescape(link) == f"/lang?to=zh-CN&next=%2Ftickets%2F{tickets['batch']}"
        r = c.get(unescape(link), follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/tickets/{tickets['batch']}"
        assert "qloop_lang=zh-CN" in r.headers["set-cookie"]
        zh = c.get(f"/tickets/{tickets['batch']}").text
        assert '<html lang="zh-CN">' in zh and "批次统计" in zh and " CST</time>" in zh
        c.get("/lang", params={"tz": "Europe/London", "next": "/dashboard"})
        assert re.search(r"\d\d:\d\d GMT</time>", c.get(f"/tickets/{tickets['batch']}").text)
        assert 'value="Europe/London" selected' in c.get("/dashboard").text
        evil = c.get(
            "/lang", params={"to": "en", "next": "//evil.example/x"}, follow_redirects=False
        )
        assert evil.headers["location"] == "/dashboard"
        ignored = c.get("/lang", params={"tz": "../../etc/passwd"}, follow_redirects=False)
        assert "qloop_tz" not in ignored.headers.get("set-cookie", "")
