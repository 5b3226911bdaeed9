"""Input messages for the rewrite tests, written byte by byte (CRLF) so that each transfer
encoding and charset is exactly what the case says, and the checks every fix must pass: a valid
header section, the parts it did not change byte-identical, the rules it fixes satisfied."""

from __future__ import annotations

import base64
import quopri
from collections.abc import Iterable
from datetime import date
from email.message import EmailMessage, Message
from typing import Any

import pytest

from relay.message_parsing import parse_message
from relay.policy.engine import PolicyEngine
from relay.policy.files import load_policies, policy_paths
from relay.policy.model import Stage, Verdict
from relay.rewrite import Change, Rewrite, Unfixable, raw
from relay.rewrite.unsubscribe import UnsubscribeLinks, UnsubscribeTokens, unsubscribe_links
from tests.policy.builders import RECIPIENT, SENDER, make_context

KEY = bytes(range(32))
TOKENS = UnsubscribeTokens(KEY)
TOKEN = TOKENS.issue(
    sender_id=SENDER.sender_id,
    list_id="newsletter",
    address_hash="ab" * 32,
    issued=date(2025, 6, 2),
)
LINKS: UnsubscribeLinks = unsubscribe_links(TOKEN, "u.relay.example", "relay.example")

HEAD = (
    "From: Shop Example <news@shop.example>\r\n"
    f"To: {RECIPIENT}\r\n"
    "Subject: Summer sale\r\n"
    "Date: Mon, 02 Jun 2025 12:00:00 +0000\r\n"
    "Message-ID: <m1@shop.example>\r\n"
)
MIME = "MIME-Version: 1.0\r\n"

PLAIN_TEXT = "Our summer sale starts today.\r\nSee you soon.\r\n"
UTF8_TEXT = "Grüße aus Berlin, 你好，夏季促销今天开始。\r\nÀ bientôt.\r\n"
HTML_TEXT = (
    "<html><head><title>Sale</title></head><body>\r\n"
    "<p>Our sale starts today.</p>\r\n</body></html>\r\n"
)
HTML_UTF8 = "<html><body>\r\n<p>夏季促销 — Grüße</p>\r\n</BODY>\r\n</html>\r\n"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def b64(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 76] + "\r\n" for i in range(0, len(text), 76))


def qp(text: str, charset: str = "utf-8") -> str:
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode(charset)).decode()
    return encoded.replace("\n", "\r\n")


def build(*lines: str, head: str = HEAD) -> bytes:
    return (head + "".join(lines)).encode("utf-8")


def leaf(content_type: str, encoding: str, body: str, extra: str = "") -> str:
    return (
        f"Content-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n{extra}\r\n{body}"
    )


def multipart(subtype: str, boundary: str, parts: Iterable[str], preamble: str = "") -> str:
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return (
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
        f"{preamble}{inner}--{boundary}--\r\n"
    )


ATTACHED_MESSAGE = (
    "From: someone@example.org\r\nSubject: attached\r\nContent-Type: text/plain\r\n\r\n"
    "An attached message, not the body.\r\n"
)

MESSAGES: dict[str, bytes] = {
    "plain": build(MIME, leaf("text/plain", "7bit", PLAIN_TEXT)),
    "plain-no-mime": build("\r\n", PLAIN_TEXT),
    "plain-7bit-ascii": build(MIME, leaf("text/plain; charset=us-ascii", "7bit", PLAIN_TEXT)),
    "plain-8bit-utf8": build(MIME, leaf('text/plain; charset="utf-8"', "8bit", UTF8_TEXT)),
    "plain-qp-utf8": build(
        MIME, leaf("text/plain; charset=utf-8", "quoted-printable", qp(UTF8_TEXT))
    ),
    "plain-base64-gb2312": build(
        MIME,
        leaf(
            "text/plain; charset=gb2312", "base64", b64("夏季促销今天开始。\r\n".encode("gb2312"))
        ),
    ),
    "plain-latin1-qp": build(
        MIME,
        leaf("text/plain; charset=iso-8859-1", "quoted-printable", qp("Grüße\r\n", "latin-1")),
    ),
    "html-only-qp": build(
        MIME, leaf("text/html; charset=utf-8", "quoted-printable", qp(HTML_UTF8))
    ),
    "html-only-no-body-tag": build(
        MIME, leaf("text/html; charset=utf-8", "7bit", "<p>Our sale starts today.</p>\r\n")
    ),
    "alternative": build(
        MIME,
        multipart(
            "alternative",
            "alt-1",
            [
                leaf("text/plain; charset=utf-8", "base64", b64(UTF8_TEXT.encode())),
                leaf("text/html; charset=utf-8", "quoted-printable", qp(HTML_UTF8)),
            ],
        ),
    ),
    "nested-mixed": build(
        MIME,
        multipart(
            "mixed",
            "mix-1",
            [
                multipart(
                    "alternative",
                    "alt-2",
                    [
                        leaf("text/plain; charset=us-ascii", "7bit", PLAIN_TEXT),
                        leaf("text/html; charset=utf-8", "8bit", HTML_TEXT),
                    ],
                ).rstrip("\r\n"),
                leaf(
                    "application/pdf; name=offer.pdf",
                    "base64",
                    b64(PDF),
                    'Content-Disposition: attachment; filename="offer.pdf"\r\n',
                ),
                leaf(
                    "text/plain; charset=utf-8",
                    "8bit",
                    "Terms attached as text, not shown inline.\r\n",
                    'Content-Disposition: attachment; filename="terms.txt"\r\n',
                ),
                "Content-Type: message/rfc822\r\n\r\n" + ATTACHED_MESSAGE,
                leaf("image/png", "base64", b64(PNG), "Content-ID: <logo@shop>\r\n"),
            ],
            preamble="This is a multi-part message in MIME format.\r\n",
        ),
    ),
}

# The text leaves of each message that a footer goes into (section numbers, "" = the message).
TEXT_LEAVES: dict[str, tuple[str, ...]] = {
    "plain": ("",),
    "plain-no-mime": ("",),
    "plain-7bit-ascii": ("",),
    "plain-8bit-utf8": ("",),
    "plain-qp-utf8": ("",),
    "plain-base64-gb2312": ("",),
    "plain-latin1-qp": ("",),
    "html-only-qp": ("",),
    "html-only-no-body-tag": ("",),
    "alternative": ("1", "2"),
    "nested-mixed": ("1.1", "1.2"),
}


def with_head(message: bytes, **headers: str | None) -> bytes:
    """`message` with header fields replaced (None removes them), the rest unchanged."""
    header, rest = raw.split(message)
    items = raw.fields(header)
    for name, value in headers.items():
        name = name.replace("_", "-")
        items = [item for item in items if item.key != name.lower()]
        if value is not None:
            items.append(raw.make_field(name, value))
    return raw.join(items) + rest


# -- checks --------------------------------------------------------------------------------


def applied(result: Rewrite | Unfixable) -> Rewrite:
    assert not isinstance(result, Unfixable), result
    return result


def assert_well_formed(message: bytes) -> None:
    """CRLF only, no line over 998 octets, a header section of fields, parseable."""
    assert b"\r" not in message.replace(b"\r\n", b""), "bare CR"
    assert b"\n" not in message.replace(b"\r\n", b""), "bare LF"
    assert all(len(line) <= raw.MAX_LINE for line in message.split(b"\r\n"))
    header, _ = raw.split(message)
    assert all(item.name for item in raw.fields(header)), "a header line that is no field"
    parsed = parse_message(message)
    assert not [d for d in parsed.defects if "Header" in type(d).__name__], parsed.defects


def content(part: Message) -> Any:
    if isinstance(part, EmailMessage) and part.get_content_maintype() == "text":
        return part.get_content()
    return part.get_payload(decode=True)


def parts(message: bytes) -> dict[str, raw.Part]:
    tree = raw.locate(message)
    found: dict[str, raw.Part] = {}
    stack = [tree]
    while stack:
        part = stack.pop()
        found[part.path] = part
        stack.extend(part.children)
    return found


def assert_only_changed(before: bytes, after: bytes, changed: Iterable[str] = ()) -> None:
    """Outside the header section and the `changed` leaves, `after` is `before` byte for byte:
    every other part (its header and body), the boundaries, preamble and epilogue; and every
    untouched leaf decodes to the same content."""
    changed = set(changed)
    old, new = parts(before), parts(after)
    assert old.keys() == new.keys()
    for path, part in old.items():
        if path in changed or part.children:
            continue
        if not path:  # the message is the leaf: its body is all that must stay
            assert before[part.body :] == after[new[path].body :]
            continue
        assert before[part.start : part.end] == after[new[path].start : new[path].end], path
        assert content(part.parsed) == content(new[path].parsed), path

    def skeleton(message: bytes, located: dict[str, raw.Part]) -> bytes:
        edits = [(p.start, p.end, b"<changed>") for path, p in located.items() if path in changed]
        if "" in changed:
            return b""
        return raw.splice(message, edits)[located[""].body :]

    assert skeleton(before, old) == skeleton(after, new)


POLICIES = load_policies(policy_paths(None))
ENGINE = PolicyEngine(POLICIES)
ALL_JURISDICTIONS = ("US", "EU", "CN")


def verdicts(message: bytes, rule_id: str, **fields: Any) -> list[Verdict]:
    """The verdicts of `rule_id` on `message`, through the shipped policies (every
    jurisdiction applies)."""
    context = make_context(raw=message, jurisdictions=ALL_JURISDICTIONS, **fields)
    decision = ENGINE.evaluate(Stage.DATA, context)
    return [verdict for verdict in decision.verdicts if verdict.rule_id == rule_id]


def fix_verdicts(message: bytes, rule_id: str) -> list[Verdict]:
    """Verdicts that a fix must remove (one-id-two-remedy rules: only the "fix" finding)."""
    return [
        verdict
        for verdict in verdicts(message, rule_id)
        if verdict.inputs.get("remedy", "fix") == "fix"
    ]


def assert_changes(changes: list[Change], rule_id: str, fields: Iterable[str]) -> None:
    assert [change.field for change in changes] == list(fields)
    assert {change.rule_id for change in changes} <= {rule_id}


def params(*names: str) -> Any:
    return pytest.mark.parametrize("name", names or tuple(MESSAGES))
