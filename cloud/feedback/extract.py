"""Key fields from a complaint's own words, for when the form leaves them empty.

A hotline agent types what the customer says; an e-commerce review or an e-mail has no form at
all. The fields a ticket needs (model, serial, dates, the temperatures the customer measured,
error codes, what the customer wants) are usually in the text, so they are read from it with
regular expressions: they are short, formulaic tokens, and a rule that is wrong can be read and
fixed, which a learned extractor cannot.

The text is first NFKC-normalised, so full-width digits and letters (``１８℃``, ``ＫＦＲ``),
full-width brackets and ``℃`` all become their half-width forms and one pattern serves both.
Nothing here guesses: a field that is not in the text is ``None`` (or empty), and a demand that
is not stated is ``None`` — the caller decides whether that means ``other``.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

DEMANDS = ("repair", "replace", "refund", "compensation", "suggestion", "other")


@dataclass(frozen=True, slots=True)
class Temperature:
    """A temperature the text states; ``kind`` says which one when the words around it do:
    ``supply`` (outlet air), ``return``, ``room``, ``outdoor``, ``setpoint`` or ``None``."""

    value_c: float
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class Extracted:
    """What a complaint's text says about the unit and the customer's wish."""

    model: str | None = None
    serial: str | None = None
    dates: tuple[date, ...] = ()
    temperatures: tuple[Temperature, ...] = ()
    error_codes: tuple[str, ...] = ()
    demand: str | None = None

    def temperature(self, kind: str) -> float | None:
        """The first temperature of ``kind`` (e.g. ``"setpoint"``), or ``None``."""
        return next((t.value_c for t in self.temperatures if t.kind == kind), None)

    @property
    def setpoint_c(self) -> float | None:
        return self.temperature("setpoint")

    @property
    def supply_c(self) -> float | None:
        return self.temperature("supply")


# Chinese split-unit model names: KFR-35GW, KF-26GW, KFR-26GW/BP3, KFR-72LW/(72555)NhAa-3.
_MODEL = re.compile(r"(?<![A-Za-z0-9])(KF[RD]?-\d{2,3}[A-Z]{1,4}(?:/[A-Za-z0-9()+-]+)?)")
_SERIAL = re.compile(
    r"(?<![A-Za-z0-9])(SN[-:#]?\s?[A-Z0-9][A-Z0-9-]{3,})"
    r"|(?:序列号|机身码|条码|serial(?:\s*(?:no\.?|number))?)\s*[:#]?\s*([A-Za-z0-9][A-Za-z0-9-]{4,})",
    re.IGNORECASE,
)
_DATE_YMD = re.compile(
    r"(?<!\d)(20\d{2}|19\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)"
)
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        ("jan january", "feb february", "mar march", "apr april", "may", "jun june")
        + ("jul july", "aug august", "sep sept september", "oct october", "nov november")
        + ("dec december",)
    )
    for m in names.split()
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})\s+({_MONTH})\.?,?\s+(\d{{4}})\b", re.IGNORECASE)
_DATE_MDY = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_UNIT = r"\s*(?:°\s*C|°|摄氏度|度|degrees?(?:\s*C(?:elsius)?)?|C(?=[\s,.;:)!?]|$))"
_SETPOINT_WORDS = (
    r"设定(?:温度)?|设置(?:的)?(?:温度)?|调到|setpoint|set\s*point|set\s+(?:to|at)|target"
)
_TEMP_WITH_UNIT = re.compile(_NUMBER + _UNIT, re.IGNORECASE)
_TEMP_AFTER_WORD = re.compile(
    rf"(?:{_SETPOINT_WORDS}|温度)\s*(?:is|of|at|to|为|是|在|:|=)?\s*{_NUMBER}(?![\d.]*\s*(?:%|A|W|V|kW|MPa|dB))",
    re.IGNORECASE,
)
_KINDS = (
    ("setpoint", _SETPOINT_WORDS),
    ("supply", r"出风口?|出风温度|supply(?:\s+air)?|outlet|air\s+from\s+the\s+vents?"),
    ("return", r"回风|return(?:\s+air)?"),
    ("outdoor", r"室外|外面|outdoor|outside"),
    ("room", r"室内|室温|房间|屋里|屋内|room|indoors?"),
)
_KIND_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _KINDS), re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;。，；!?！？()\[\]、]|\.\s")

_CODE_CONTEXT = re.compile(
    r"(?:故障码|故障代码|错误码|代码|显示|报|闪|error\s*code|code|shows|showing|throwing)"
    r"\s*[:：]?\s*([A-Za-z]{1,2}\d{1,2})(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_CODE_BARE = re.compile(r"(?<![A-Za-z0-9/_-])([EFPHU]\d{1,2})(?![A-Za-z0-9℃°])")

_DEMAND_WORDS: dict[str, str] = {
    "refund": r"退货|退款|退钱|退机|退掉|refund|money\s+back|return\s+(?:it|the\s+unit)",
    "replace": r"换货|更换|换机|换一台|换新|调换|replace|replacement|exchange",
    "compensation": r"赔偿|补偿|赔钱|索赔|compensat\w*|reimburse\w*|damages",
    "repair": r"维修|修理|修好|检修|上门检测|报修|派人|repair|fix|technician|send\s+someone",
    "suggestion": r"建议|希望改进|意见|suggest\w*|recommend\w*|feature\s+request",
}
_DEMAND_RES = {k: re.compile(v, re.IGNORECASE) for k, v in _DEMAND_WORDS.items()}
_DEMAND_CUE = re.compile(
    r"(?:要求|希望|申请|必须|请|想要|要|给我|我要|demand\w*|want|would\s+like|request\w*"
    r"|asking\s+for|ask\s+for|please|insist\w*)\s*(?:立即|尽快|厂家|商家|给予?|a\s+|an\s+|the\s+)?$",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """NFKC: full-width digits, letters and brackets become half-width; ``℃`` becomes ``°C``.

    >>> normalise("出风口温度１８℃（设定１６℃）")
    '出风口温度18°C(设定16°C)'
    """
    return unicodedata.normalize("NFKC", text)


def extract(text: str) -> Extracted:
    """Every field the text states.

    >>> e = extract("空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。")
    >>> e.supply_c, e.setpoint_c, e.model, e.demand
    (18.0, 16.0, None, None)
    >>> e = extract("KFR-26GW/BP3, SN-000123, bought 2024-03-15: supply air 18 °C with the "
    ...             "setpoint at 16, error code E4. I want a refund.")
    >>> e.model, e.serial, e.dates, e.error_codes, e.demand
    ('KFR-26GW/BP3', 'SN-000123', (datetime.date(2024, 3, 15),), ('E4',), 'refund')
    >>> e.supply_c, e.setpoint_c
    (18.0, 16.0)
    >>> extract("")
    Extracted(model=None, serial=None, dates=(), temperatures=(), error_codes=(), demand=None)
    """
    text = normalise(text)
    return Extracted(
        model=extract_model(text),
        serial=extract_serial(text),
        dates=extract_dates(text),
        temperatures=extract_temperatures(text),
        error_codes=extract_error_codes(text),
        demand=extract_demand(text),
    )


def extract_model(text: str) -> str | None:
    """The first model name, upper-cased.

    >>> extract_model("型号ｋｆｒ－３５ｇｗ，买了一个月")
    'KFR-35GW'
    """
    m = _MODEL.search(normalise(text).upper())
    return m.group(1) if m else None


def extract_serial(text: str) -> str | None:
    """The first serial number (``SN…``, or after 序列号/机身码/serial no.), upper-cased.

    >>> extract_serial("机身序列号：A2405170123，SN  missing"), extract_serial("sn-000123坏了")
    ('A2405170123', 'SN-000123')
    """
    m = _SERIAL.search(normalise(text))
    if m is None:
        return None
    return re.sub(r"\s+", "", m.group(1) or m.group(2)).upper()


def extract_dates(text: str) -> tuple[date, ...]:
    """Calendar dates with a year, in the order they appear (a date that does not exist is
    skipped; "5月10日" without a year is not a date one can place).

    >>> extract_dates("2024年5月10日报修，约定2024/5/12上门，on 3 June 2024 and May 4th, 2024; 2024-02-30")
    (datetime.date(2024, 5, 10), datetime.date(2024, 5, 12), datetime.date(2024, 6, 3), datetime.date(2024, 5, 4))
    """  # noqa: E501
    text = normalise(text)
    found: list[tuple[int, date]] = []

    def add(pos: int, y: str, mo: int, d: str) -> None:
        with contextlib.suppress(ValueError):  # 2024-02-30 is no date
            found.append((pos, date(int(y), mo, int(d))))

    for m in _DATE_YMD.finditer(text):
        add(m.start(), m.group(1), int(m.group(2)), m.group(3))
    for m in _DATE_DMY.finditer(text):
        add(m.start(), m.group(3), _MONTHS[m.group(2).lower()], m.group(1))
    for m in _DATE_MDY.finditer(text):
        add(m.start(), m.group(3), _MONTHS[m.group(1).lower()], m.group(2))
    return tuple(d for _, d in sorted(found, key=lambda x: x[0]))


def _kind(before: str) -> str | None:
    """The kind named nearest before a number, within its clause."""
    cut = max((m.end() for m in _CLAUSE_END.finditer(before)), default=0)
    clause = before[cut:][-24:]
    kind = None
    for m in _KIND_RE.finditer(clause):
        kind = m.lastgroup
    return kind


def extract_temperatures(text: str) -> tuple[Temperature, ...]:
    """Numbers with a temperature unit (℃, °C, °, 度, degrees) or right after a setpoint word,
    with the kind the words before them name; values outside -40..80 °C are not temperatures.

    >>> extract_temperatures("出风口温度18℃(设定16℃)")
    (Temperature(value_c=18.0, kind='supply'), Temperature(value_c=16.0, kind='setpoint'))
    >>> [t.kind for t in extract_temperatures("room 28 °C although set to 18, 18度")]
    ['room', 'setpoint', None]
    """
    text = normalise(text)
    spans: dict[int, float] = {}
    for m in _TEMP_WITH_UNIT.finditer(text):
        spans[m.start(1)] = float(m.group(1))
    for m in _TEMP_AFTER_WORD.finditer(text):
        spans.setdefault(m.start(1), float(m.group(1)))
    out = []
    for start in sorted(spans):
        value = spans[start]
        if -40.0 <= value <= 80.0:
            out.append(Temperature(value, _kind(text[:start])))
    return tuple(out)


def extract_error_codes(text: str) -> tuple[str, ...]:
    """Error codes: a letter or two and a number after 故障码/显示/报/error code …, or a bare
    ``E4``/``F1``/``P4``/``H6``/``U1``-style token; upper-cased, each once, in order.

    >>> extract_error_codes("故障码E4，后来又显示ｆ１；KFR-35GW/F1不是故障码")
    ('E4', 'F1')
    >>> extract_error_codes("it keeps showing e6")
    ('E6',)
    """
    text = normalise(text)
    hits = [(m.start(1), m.group(1).upper()) for m in _CODE_CONTEXT.finditer(text)]
    hits += [(m.start(1), m.group(1)) for m in _CODE_BARE.finditer(text)]
    seen: dict[str, None] = {}
    for _, code in sorted(hits):
        seen.setdefault(code, None)
    return tuple(seen)


def extract_demand(text: str) -> str | None:
    """What the customer asks for: a demand word right after a cue (要求, 希望, want, please …)
    wins; otherwise the strongest demand word anywhere (refund, then replace, compensation,
    repair, suggestion); ``None`` when the text names none.

    >>> extract_demand("维修了三次还没好，要求换货"), extract_demand("不给换就退货")
    ('replace', 'refund')
    >>> extract_demand("I would like a replacement"), extract_demand("建议增加静音模式")
    ('replace', 'suggestion')
    >>> extract_demand("制冷效果下降") is None
    True
    """
    text = normalise(text)
    cued: list[tuple[int, str]] = []
    for demand, pattern in _DEMAND_RES.items():
        for m in pattern.finditer(text):
            if _DEMAND_CUE.search(text[max(0, m.start() - 16) : m.start()]):
                cued.append((m.start(), demand))
    if cued:
        return min(cued)[1]
    return next((d for d, p in _DEMAND_RES.items() if p.search(text)), None)
