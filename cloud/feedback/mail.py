"""Complaints that came by mail, read as plain values: an .eml file or each message of an mbox.

A message gives its subject and body as one text, its Date header as written, and its sender's
name and address; turning those into a feedback record (the time parsed, the row numbered) is
:mod:`cloud.feedback.sources`'s job. Chinese mail is often GBK labelled GB2312, or carries raw
8-bit header bytes; both decode as GB18030, their superset. An HTML-only body loses its tags,
scripts and styles. Pure: a file or bytes in, values out; no clock, no network.
"""

from __future__ import annotations

import codecs
import contextlib
import email
import html
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.header import decode_header
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

_HTML_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_HTML_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|li|tr|h\d)\s*>", re.I)


@dataclass(frozen=True, slots=True)
class Mail:
    """One message: ``text`` is the subject and the body, a line apart; ``date`` the Date
    header as written (``""`` without one); ``name`` and ``address`` the sender's, ``""`` when
    the From header lacks them."""

    text: str
    date: str
    name: str
    address: str


def messages(path: Path, *, mbox: bool) -> Iterator[Mail]:
    """The messages of an mbox file in order, or the one message of an .eml file; the file is
    opened when iteration starts."""
    if not mbox:
        yield parse_message(path.read_bytes())
        return
    with contextlib.closing(mailbox.mbox(path, create=False)) as box:
        for key in box.iterkeys():
            yield parse_message(box.get_bytes(key))


def count_messages(path: Path, *, mbox: bool) -> int:
    """How many messages :func:`messages` yields, without decoding them."""
    if not mbox:
        return 1
    with contextlib.closing(mailbox.mbox(path, create=False)) as box:
        return len(box)


def parse_message(data: bytes) -> Mail:
    """A message's text, Date and sender, from its bytes.

    >>> mail = parse_message(
    ...     b"From: =?GB2312?B?wO7A1w==?= <li@example.cn>\\n"  # 李雷
    ...     b"Subject: =?GBK?B?v9W198Kpy64=?=\\n"  # 空调漏水
    ...     b"Date: Fri, 10 May 2024 14:30:00 +0800\\n"
    ...     b"Content-Type: text/html; charset=utf-8\\n\\n"
    ...     b"<p>Water &amp; ice</p><div>dripping</div><script>track()</script>"
    ... )
    >>> mail.text
    '空调漏水\\nWater & ice\\ndripping'
    >>> mail.date, mail.name, mail.address
    ('Fri, 10 May 2024 14:30:00 +0800', '李雷', 'li@example.cn')
    """
    msg = email.message_from_bytes(data, policy=policy.default)
    subject, (name, address) = _header(msg, "subject").strip(), parseaddr(_header(msg, "from"))
    text = "\n".join(p for p in (subject, _body(msg).strip()) if p)
    return Mail(text=text, date=_header(msg, "date"), name=name, address=address)


def _codec(charset: str | None) -> str:
    """The codec for a mail's charset; GB2312 and GBK labels decode as their superset GB18030,
    as mail clients label GBK text GB2312."""
    try:
        name = codecs.lookup(charset or "utf-8").name
    except LookupError:
        return "utf-8"
    return "gb18030" if name in ("gb2312", "gbk") else name


def _header(msg: EmailMessage, name: str) -> str:
    """A header decoded from its raw form (the email package decodes GB2312 words strictly)."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name), "")
    raw = _eight_bit(re.sub(r"\r?\n(?=[ \t])", "", str(raw)))
    return "".join(
        part if isinstance(part, str) else part.decode(_codec(charset), "replace")
        for part, charset in decode_header(raw)
    )


def _eight_bit(text: str) -> str:
    """Raw 8-bit bytes in a header (kept by the parser as surrogates) as UTF-8, else GB18030."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", "replace")


def _body(msg: EmailMessage) -> str:
    """The plain-text body, or the HTML one stripped of its tags when there is no plain one."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    payload = part.get_payload(decode=True) or b""
    text = payload.decode(_codec(part.get_content_charset()), "replace").replace("\r\n", "\n")
    if part.get_content_type() != "text/html":
        return text
    text = html.unescape(re.sub(r"<[^>]+>", "", _HTML_BREAK.sub("\n", _HTML_DROP.sub("", text))))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
