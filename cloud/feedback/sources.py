"""Bulk feedback exports read into the records ``POST /api/v1/feedback`` takes.

A CRM or an e-commerce back office exports complaints as CSV or Excel (.xlsx); a mailbox gives .eml
files or one mbox file (their messages read by :mod:`cloud.feedback.mail`). :func:`read_feedback`
turns each row or message into a :class:`FeedbackRecord`, or into a :class:`RowError` that names
the row and the reason, so one bad row never stops an import. A file that cannot be read at all (an
unknown kind, neither UTF-8 nor GB18030, a mapping naming a column the header lacks) raises
:class:`SourceError` before the first row. Rows stream: a 10,000-row file is never held in memory.

Columns are found by header, case-insensitively, in English or Chinese (:data:`HEADERS`), or
named by a mapping ``{field: header}``. A time without a zone is taken in ``default_tz``: UTC
unless the caller says otherwise (a Chinese CRM's times want ``timezone(timedelta(hours=8))``).
Pure: files in, records out; no database, no network, no clock.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from cloud.feedback.extract import DEMANDS, extract_demand
from cloud.feedback.labelled import CHANNELS
from cloud.feedback.mail import Mail, count_messages, messages
from contract.errors import QloopError

if TYPE_CHECKING:
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

FIELDS = (
    *("channel", "text", "received_at", "customer_name", "contact"),
    *("model", "serial", "purchase_date", "demand"),
)
MAX_TEXT = 20_000
FIRST_YEAR, LAST_YEAR = 2000, 2100

# Headers that name a field without a mapping, compared case-insensitively; the first listed
# that a file has wins, and a column serves one field only.
HEADERS: dict[str, tuple[str, ...]] = {
    field: tuple(words.split())
    for field, words in {
        "text": "text 内容 投诉内容 反馈内容 问题描述 评价内容 留言内容 content complaint "
        "description review comment",
        "received_at": "received_at 时间 反馈时间 投诉时间 创建时间 日期 created created_at "
        "date time",
        "customer_name": "customer_name 客户 客户姓名 姓名 name customer",
        "contact": "contact 电话 联系电话 联系方式 手机 手机号 phone email",
        "model": "model 型号 产品型号",
        "serial": "serial 序列号 机身编码 条码 sn",
        "purchase_date": "purchase_date 购买日期",
        "demand": "demand 诉求 客户诉求",
        "channel": "channel 渠道 来源",
    }.items()
}
# Channel cells a person writes, as the channel they mean.
CHANNEL_ALIASES: dict[str, str] = {
    alias: channel
    for channel, words in {
        "hotline": "热线 电话 phone",
        "ecommerce": "电商 京东 天猫 淘宝 拼多多",
        "store": "门店",
        "dealer": "经销商",
        "platform": "12315 黑猫 黑猫投诉 投诉平台",
        "email": "邮件 e-mail mail",
        "online": "在线 官网",
        "internal": "内部",
        "partner": "合作",
        "survey": "回访 问卷",
    }.items()
    for alias in words.split()
}

_KINDS = {".csv": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".eml": "eml", ".mbox": "mbox"}
_KINDS[".mbx"] = "mbox"
_LOCAL_TIME = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]*(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}(?:\.\d+)?)\s*秒?)?)?"
)
_EXCEL_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")  # days since 1899-12-30: 36526 is 2000-01-01
_EXCEL_EPOCH = datetime(1899, 12, 30)


class SourceError(QloopError, ValueError):
    """A feedback file that cannot be read at all; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One piece of feedback; ``line`` is the row (CSV line, Excel row, mbox message number,
    1 for an .eml) where it starts in ``source``, the file's name.

    >>> r = FeedbackRecord("hotline", "不制冷", 2, "a.csv", customer_name="王", demand="repair")
    >>> r.as_body()
    {'channel': 'hotline', 'text': '不制冷', 'customer': {'name': '王'}, 'demand': 'repair'}
    """

    channel: str
    text: str
    line: int
    source: str
    received_at: datetime | None = None  # always aware
    customer_name: str | None = None
    contact: str | None = None
    model: str | None = None
    serial: str | None = None
    purchase_date: date | None = None
    demand: str | None = None

    def as_body(self) -> dict[str, object]:
        """The JSON body of ``POST /api/v1/feedback``, without the fields that are ``None``."""
        customer = {"name": self.customer_name, "contact": self.contact}
        body = {
            "channel": self.channel,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "text": self.text,
            "customer": {k: v for k, v in customer.items() if v is not None} or None,
            "model": self.model,
            "serial": self.serial,
            "purchase_date": self.purchase_date.isoformat() if self.purchase_date else None,
            "demand": self.demand,
        }
        return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot become a record: where it starts, why, and its first 200 characters."""

    line: int
    reason: str
    raw: str = ""


def parse_mapping(spec: str) -> dict[str, str]:
    """``"text=问题描述,contact=手机号"`` as ``{field: column}``; ``channel=`` (no column) ignores
    a channel column the header would otherwise supply.

    >>> parse_mapping("text=问题描述， contact = 手机号")
    {'text': '问题描述', 'contact': '手机号'}
    >>> parse_mapping("txt=内容")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cloud.feedback.sources.SourceError: mapping: unknown field 'txt' (fields: channel, text, ...
    """
    mapping: dict[str, str] = {}
    for item in filter(str.strip, re.split(r"[,，]", spec)):
        field, eq, column = (s.strip() for s in item.replace("＝", "=").partition("="))
        if not eq or not field:
            raise SourceError(f"mapping: {item.strip()!r} is not field=column")
        if field in mapping:
            raise SourceError(f"mapping: {field} is mapped twice")
        mapping[field] = column
    _check_fields(mapping)
    return mapping


def read_feedback(
    path: Path,
    *,
    channel: str | None = None,
    mapping: Mapping[str, str] | None = None,
    default_tz: tzinfo = UTC,
    sheet: str | None = None,
) -> Iterator[FeedbackRecord | RowError]:
    """Every row of a .csv/.tsv, .xlsx (``sheet``, else the first; header in row 1), .eml or
    mbox file, in order. A row's channel is its channel cell, else ``channel``, else ``email``
    for mail; fully empty rows are skipped. Raises :class:`SourceError` before the first row
    for a file that cannot be read."""
    path = Path(path)
    fallback = _channel(channel) if channel else None
    if channel and fallback is None:
        raise SourceError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    _check_fields(mapping or {})
    kind = _kind(path)
    if kind in ("eml", "mbox"):
        if mapping:
            raise SourceError(f"{path.name}: a column mapping applies to CSV and .xlsx only")
        label = {"received_at": "Date header"}
        rows = _Rows(path.name, "message", label, fallback or "email", default_tz)
        return (
            rows.record(n, _mail_fields(mail), mail.text)
            for n, mail in enumerate(messages(path, mbox=kind == "mbox"), start=1)
        )
    layout = _csv_layout(path) if kind == "csv" else None
    header = layout[2] if layout else _xlsx_header(path, sheet)
    columns = _columns(header, mapping or {}, path.name)
    if "channel" not in columns and fallback is None:
        raise SourceError(f"{path.name}: no channel column; pass a channel or map channel=<column>")
    labels = {field: _cell(header[i]).strip() for field, i in columns.items()}
    rows = _Rows(path.name, "row", labels, fallback, default_tz)
    cells = _csv_rows(path, *layout[:2]) if layout else _xlsx_rows(path, sheet)
    return (
        rows.record(n, {f: row[i] if i < len(row) else None for f, i in columns.items()}, raw)
        for n, row, raw in cells
    )


def count_rows(path: Path, *, sheet: str | None = None) -> int | None:
    """How many rows :func:`read_feedback` will yield, for a progress bar: exact for CSV and
    mail; for .xlsx the sheet's recorded size (empty rows included), ``None`` if it has none."""
    path = Path(path)
    kind = _kind(path)
    if kind in ("eml", "mbox"):
        return count_messages(path, mbox=kind == "mbox")
    if kind == "xlsx":
        book, ws = _open_sheet(path, sheet)
        with contextlib.closing(book):
            return max(ws.max_row - 1, 0) if ws.max_row else None
    return sum(1 for _ in _csv_rows(path, *_csv_layout(path)[:2]))


class _Invalid(QloopError, ValueError):
    """Why a row cannot become a record; caught in :meth:`_Rows.record`."""


@dataclass(frozen=True, slots=True)
class _Rows:
    source: str
    unit: str  # "row" or "message", as the reasons say it
    labels: Mapping[str, str]  # field -> the column or header it came from
    channel: str | None
    tz: tzinfo

    def record(
        self, line: int, values: Mapping[str, object], raw: str
    ) -> FeedbackRecord | RowError:
        try:
            channel = self._channel(values.get("channel"))
            text = _cell(values.get("text")).strip()
            if not text:
                raise _Invalid("no text")
            if len(text) > MAX_TEXT:
                raise _Invalid(f"text is {len(text):,} characters (at most {MAX_TEXT:,})")
            received = self._time("received_at", values.get("received_at"))
            purchased = self._time("purchase_date", values.get("purchase_date"))
            demand = _optional(values.get("demand"))
            return FeedbackRecord(
                channel=channel,
                text=text,
                line=line,
                source=self.source,
                received_at=received,
                customer_name=_optional(values.get("customer_name")),
                contact=_optional(values.get("contact")),
                model=_optional(values.get("model")),
                serial=_optional(values.get("serial")),
                purchase_date=purchased.date() if purchased else None,
                demand=_demand(demand) if demand else None,
            )
        except _Invalid as e:
            return RowError(line, f"{self.unit} {line}: {e}", raw[:200])

    def _label(self, field: str) -> str:
        column = self.labels.get(field, field)
        return field if column.lower() == field else f"{field} ({column})"

    def _channel(self, value: object) -> str:
        cell = _cell(value).strip()
        if not cell:
            if self.channel is None:
                raise _Invalid("no channel (the channel cell is empty and no channel was given)")
            return self.channel
        if (found := _channel(cell)) is None:
            known = ", ".join(CHANNELS)
            raise _Invalid(f"{self._label('channel')} {cell[:60]!r} is not one of {known}")
        return found

    def _time(self, field: str, value: object) -> datetime | None:
        text = _cell(value).strip()
        if isinstance(value, datetime):
            when = value
        elif isinstance(value, date):
            when = datetime(value.year, value.month, value.day)
        elif not text:
            return None
        else:
            try:
                when = _parse_time(text)
            except (ValueError, OverflowError, TypeError, IndexError):
                shown = f"{self._label(field)} {text[:60]!r}"
                raise _Invalid(f"{shown} is not a date (use YYYY-MM-DD or ISO 8601)") from None
        if not FIRST_YEAR <= when.year <= LAST_YEAR:
            shown = f"{self._label(field)} {text[:60]!r}"
            raise _Invalid(f"{shown} is not between {FIRST_YEAR} and {LAST_YEAR}")
        return when if when.tzinfo else when.replace(tzinfo=self.tz)


def _parse_time(text: str) -> datetime:
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text)
    if m := _LOCAL_TIME.fullmatch(text):
        y, mo, d, h, mi, s = m.groups()
        at = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0))
        return at + timedelta(seconds=float(s or 0))
    if _EXCEL_SERIAL.fullmatch(text):
        return _EXCEL_EPOCH + timedelta(days=float(text))
    return parsedate_to_datetime(text)  # RFC 5322, as in a mail's Date header


def _cell(value: object) -> str:
    """A cell as text; a whole number Excel stores as a float (a phone number) loses its ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _optional(value: object) -> str | None:
    return _cell(value).strip() or None


def _channel(value: str) -> str | None:
    key = value.strip().lower()
    return key if key in CHANNELS else CHANNEL_ALIASES.get(key)


def _demand(value: str) -> str:
    """A demand cell as one of DEMANDS: its English name, a word :func:`extract_demand` knows
    (维修, 换货, 退款 …), or ``other`` for any other wish."""
    key = value.lower()
    if key in DEMANDS:
        return key
    return "repair" if key == "修" else extract_demand(value) or "other"


def _mail_fields(mail: Mail) -> dict[str, object]:
    """A message's values under the fields they fill; its Date is parsed as any other time."""
    return {
        "text": mail.text,
        "received_at": mail.date,
        "customer_name": mail.name,
        "contact": mail.address,
    }


def _check_fields(mapping: Mapping[str, str]) -> None:
    if unknown := [f for f in mapping if f not in FIELDS]:
        raise SourceError(f"mapping: unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")


def _norm(header: object) -> str:
    return _cell(header).strip().strip("*：: ").lower()


def _columns(header: list[object], mapping: Mapping[str, str], source: str) -> dict[str, int]:
    """Which column each field comes from: the mapping's, else a known header's."""
    names = [_norm(h) for h in header]
    shown = ", ".join(_cell(h).strip() for h in header if _cell(h).strip())
    if missing := [f"{f}={c}" for f, c in mapping.items() if c and _norm(c) not in names]:
        raise SourceError(
            f"{source}: the mapping names columns the header lacks: {', '.join(missing)} "
            f"(header: {shown or 'empty'})"
        )
    claimed = {names.index(_norm(c)) for c in mapping.values() if c}
    columns = {f: names.index(_norm(c)) for f, c in mapping.items() if c}
    for field, known in HEADERS.items():
        i = next((names.index(n) for n in known if n in names), None)
        if field not in mapping and i is not None and i not in claimed:
            columns[field] = i
            claimed.add(i)
    if "text" not in columns:
        raise SourceError(f"{source}: no text column; map one with text=<column> (header: {shown})")
    return columns


def _kind(path: Path) -> str:
    try:
        with path.open("rb") as f:
            start = f.read(5)
    except OSError as e:
        raise SourceError(f"{path.name} cannot be read: {e.strerror or e}") from e
    suffix = path.suffix.lower()
    if kind := _KINDS.get(suffix) or ("mbox" if start == b"From " else None):
        return kind
    hint = " (save it as .xlsx)" if suffix == ".xls" else ""
    raise SourceError(
        f"{path.name}: cannot read {suffix or 'a file'}{hint}; read .csv, .xlsx, .eml or mbox"
    )


def _encoding(path: Path) -> str:
    """UTF-8, else GB18030 (a superset of the GBK that Chinese CRMs export), tried over the
    whole file first so that a bad byte cannot surface after rows were yielded."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 16):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise SourceError(f"{path.name} is neither UTF-8 nor GB18030 (GBK) text")


def _csv_layout(path: Path) -> tuple[str, str, list[object]]:
    """Encoding, delimiter (sniffed from the first 8 KB, else ',') and header row."""
    try:
        encoding = _encoding(path)
        with path.open(encoding=encoding, newline="") as f:
            sample = f.read(8192)
            try:
                cut = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
                delimiter = csv.Sniffer().sniff(cut, delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
            f.seek(0)
            header: list[object] = list(next(csv.reader(f, delimiter=delimiter), []))
    except OSError as e:
        raise SourceError(f"{path.name} cannot be read: {e.strerror or e}") from e
    if not header:
        raise SourceError(f"{path.name} is empty")
    return encoding, delimiter, header


def _csv_rows(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str], str]]:
    """Data rows with the physical line each starts on (a quoted text may span lines)."""
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        end = 0
        try:
            for row in reader:
                start, end = end + 1, reader.line_num
                if start > 1 and any(cell.strip() for cell in row):
                    yield start, row, delimiter.join(row)
        except csv.Error as e:
            raise SourceError(f"{path.name} line {reader.line_num}: {e}") from e


def _open_sheet(path: Path, sheet: str | None) -> tuple[Workbook, ReadOnlyWorksheet]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (OSError, KeyError, zipfile.BadZipFile, InvalidFileException) as e:
        raise SourceError(f"{path.name} is not a readable .xlsx workbook ({e})") from e
    if sheet is None:
        return book, book.worksheets[0]
    if sheet not in book.sheetnames:
        book.close()
        raise SourceError(
            f"{path.name} has no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})"
        )
    return book, book[sheet]


def _xlsx_header(path: Path, sheet: str | None) -> list[object]:
    book, ws = _open_sheet(path, sheet)
    with contextlib.closing(book):
        return list(next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ()))


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[object], str]]:
    book, ws = _open_sheet(path, sheet)
    with contextlib.closing(book):
        for n, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
            if any(_cell(v).strip() for v in row):
                yield n, list(row), "\t".join(_cell(v) for v in row)
