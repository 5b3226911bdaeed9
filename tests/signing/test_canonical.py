"""relay's message split and relaxed body canonicalisation give the same bytes as dkimpy's
`rfc822_parse` and `Relaxed.canonicalize_body`, on edge cases and on generated messages."""

from __future__ import annotations

import random

import dkim
import pytest
from dkim.canonicalization import Relaxed

from relay.signing import canonical
from relay.signing.canonical import relaxed_body, split_message

EDGE_BODIES = [
    b"",
    b"\r\n",
    b"\r\n\r\n\r\n",
    b"x",
    b" ",
    b"\t",
    b" \r\n",
    b"a  \t b\t\tc \r\n",
    b"trailing blank   ",
    b"line\r\n\r\n\r\n",
    b"bare\nline\nfeeds\n\n",
    b"mixed\r\nends\nand\r\r\nlone\rcarriage returns \r\n",
    b"  leading\r\n\t\tindent\r\n",
    b"8-bit \xc3\xa4\xc3\xb6 \xff\xfe  \r\n",
]


def dkimpy(message: bytes) -> tuple[list[list[bytes]], bytes]:
    headers, body = dkim.rfc822_parse(message)
    return headers, Relaxed.canonicalize_body(body)


def relay(message: bytes) -> tuple[list[list[bytes]], bytes]:
    header_section, body, _ = split_message(message)
    assert canonical.header_section(message) == header_section
    headers, _ = dkim.rfc822_parse(header_section)
    return headers, relaxed_body(body)


@pytest.mark.parametrize("body", EDGE_BODIES)
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_edge_cases(body, eol):
    message = b"From: a@b.example" + eol + b"Subject:  x \t y" + eol + eol + body
    assert relay(message) == dkimpy(message)


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@b.example\r\n",  # no body, no empty line
        b"From: a@b.example",  # no line end at all
        b"\r\nbody only\r\n",  # no header section
        b"\nbody only\n",
        b"From: a@b.example\n\r\nbody after a CRLF empty line\n",
        b"From: a@b.example\r\n\nbody after an LF empty line\r\n",
        b"From: a@b.example\n\n\r\nLF empty line just before a CRLF one\r\n",
        b"From: a@b.example\r\nTo: c@d.example\n\r\nthen\n\nlater\n",
        b"From a@b.example Tue Mar  4 09:00:00 2025\r\nFrom: a@b.example\r\n\r\nmbox line\r\n",
    ],
)
def test_header_section_edges(message):
    assert relay(message) == dkimpy(message)


def test_generated_messages():
    rng = random.Random(20250304)
    pieces = [
        b"a",
        b"word",
        b" ",
        b"  ",
        b"\t",
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b"\xc3\xa9",
        b"=",
    ]
    for _ in range(3000):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 60)))
        eol = rng.choice([b"\r\n", b"\n"])
        message = b"From: a@b.example" + eol + b"To: c@d.example" + eol + eol + body
        assert relay(message) == dkimpy(message), message


def test_line_separator_follows_the_message():
    assert split_message(b"From: a@b.example\r\n\r\nx\r\n")[2] == b"\r\n"
    assert split_message(b"From: a@b.example\n\nx\n")[2] == b"\n"
