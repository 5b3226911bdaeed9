"""Body lines over 998 octets re-encoded, only in the parts that have them; header lines
refused."""

from __future__ import annotations

import pytest

from relay.rewrite import Change, Unfixable, raw
from relay.rewrite.long_lines import fix_long_lines
from tests.rewrite.messages import (
    MESSAGES,
    MIME,
    applied,
    assert_only_changed,
    assert_well_formed,
    b64,
    build,
    content,
    fix_verdicts,
    leaf,
    multipart,
    parts,
    verdicts,
)

RULE = "RFC-5322-LINELEN"
LONG = "word " * 300 + "end"  # 1503 octets
LONG_UTF8 = "长" * 400  # 1200 octets

CASES = {
    # name: (message, changed leaf, old encoding, new encoding)
    "plain 7bit": (
        build(MIME, leaf("text/plain; charset=us-ascii", "7bit", f"short\r\n{LONG}\r\nafter\r\n")),
        "",
        "7bit",
        "quoted-printable",
    ),
    "no mime": (build("\r\n", f"{LONG}\r\n"), "", None, "quoted-printable"),
    "8bit utf-8": (
        build(MIME, leaf("text/plain; charset=utf-8", "8bit", f"{LONG_UTF8}\r\n")),
        "",
        "8bit",
        "quoted-printable",
    ),
    "html in alternative": (
        build(
            MIME,
            multipart(
                "alternative",
                "b1",
                [
                    leaf("text/plain", "7bit", "short lines\r\n"),
                    leaf("text/html; charset=utf-8", "8bit", f"<p>{LONG_UTF8}</p>\r\n"),
                ],
            ),
        ),
        "2",
        "8bit",
        "quoted-printable",
    ),
    "base64 unwrapped": (
        build(
            MIME,
            multipart(
                "mixed",
                "b2",
                [
                    leaf("text/plain", "7bit", "see attachment\r\n"),
                    leaf(
                        "application/octet-stream",
                        "base64",
                        b64(bytes(900)).replace("\r\n", "") + "\r\n",
                    ),
                ],
            ),
        ),
        "2",
        "base64",
        "base64",
    ),
    "qp with a long line": (
        build(MIME, leaf("text/plain", "quoted-printable", f"{LONG}=3D\r\n")),
        "",
        "quoted-printable",
        "quoted-printable",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_long_body_lines_are_re_encoded(case: str) -> None:
    before, path, old, new = CASES[case]
    assert fix_verdicts(before, RULE)
    after, changes = applied(fix_long_lines(before))
    assert_well_formed(after)
    assert_only_changed(before, after, [path])
    changed = parts(after)[path].parsed
    assert changed["Content-Transfer-Encoding"] == new
    assert content(changed) == content(parts(before)[path].parsed)
    assert all(len(line) <= 76 for line in after[parts(after)[path].body :].split(b"\r\n"))
    label = raw.label(parts(after)[path])
    assert changes == [Change(RULE, f"{label} Content-Transfer-Encoding", old, new)]
    assert not verdicts(after, RULE)
    assert applied(fix_long_lines(after)) == (after, [])


@pytest.mark.parametrize("name", list(MESSAGES))
def test_messages_without_long_lines_are_unchanged(name: str) -> None:
    assert applied(fix_long_lines(MESSAGES[name])) == (MESSAGES[name], [])


def test_a_long_header_line_is_unfixable() -> None:
    message = build(MIME, "X-Long: " + "x" * 1000 + "\r\n", leaf("text/plain", "7bit", "hi\r\n"))
    result = fix_long_lines(message)
    assert isinstance(result, Unfixable)
    assert "header" in result.detail
    assert [v.inputs["remedy"] for v in verdicts(message, RULE)] == ["reject"]


@pytest.mark.parametrize(
    "message",
    [
        build(
            MIME,
            multipart("mixed", "b3", [leaf("text/plain", "7bit", "x\r\n")], preamble=LONG + "\r\n"),
        ),
        build(
            MIME,
            multipart(
                "mixed",
                "b4",
                ["Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n" + LONG + "\r\n"],
            ),
        ),
        build(MIME, leaf("text/plain", "x-uuencode", LONG + "\r\n")),
    ],
    ids=["preamble", "attached message", "unknown encoding"],
)
def test_long_lines_outside_a_re_encodable_body_are_unfixable(message: bytes) -> None:
    assert isinstance(fix_long_lines(message), Unfixable)
