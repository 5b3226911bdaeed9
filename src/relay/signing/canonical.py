"""Splitting a message and the relaxed body canonicalisation (RFC 6376 §3.4.4), with bytes
operations instead of per-blank regular expressions.

dkimpy splits the whole message into lines with `re.split` and canonicalises the body with
`re.sub` on `[\t ]+`, one match per blank: about 170-250 µs for 10 KB of text, as much as the
RSA-2048 signature itself. These functions give byte for byte the body that dkimpy's
`rfc822_parse` and `Relaxed.canonicalize_body` give (tests/signing/test_canonical.py compares
them on edge cases and generated input) in about a tenth of the time. The header fields are still
parsed and canonicalised by dkimpy.
"""

from __future__ import annotations

import re

__all__ = ["header_section", "relaxed_body", "split_message"]

_SPACES = re.compile(rb"  +")  # a literal prefix: the regex engine only stops at double spaces


def split_message(message: bytes) -> tuple[bytes, bytes, bytes]:
    """(header section, body, line separator): the header section with its last line ending,
    the body after the empty line with every bare LF made CRLF (as dkimpy's `rfc822_parse`), and
    the message's own line separator to write new header fields with."""
    linesep = b"\n" if (eol := message.find(b"\n")) > 0 and message[eol - 1] != 0x0D else b"\r\n"
    end = _header_end(message)
    rest = message[end:]
    body = rest[2:] if rest.startswith(b"\r\n") else rest[1:]
    if body.count(b"\n") != body.count(b"\r\n"):
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return message[:end], body, linesep


def header_section(message: bytes) -> bytes:
    """The header section of split_message, without copying the body."""
    return message[: _header_end(message)]


def _header_end(message: bytes) -> int:
    """The length of the header section: up to the empty line (CRLF or bare LF) that ends it,
    or the whole message when there is none."""
    if message.startswith((b"\r\n", b"\n")):
        return 0
    end = message.find(b"\n\r\n")
    bare = message.find(b"\n\n", 0, len(message) if end < 0 else end + 1)  # an earlier LF one
    if bare >= 0:
        end = bare
    elif end < 0:
        return len(message)
    return end + 1


def relaxed_body(body: bytes) -> bytes:
    """The relaxed canonical form of a CRLF body: runs of WSP made one SP, WSP at line ends
    removed, empty lines at the end removed, a final CRLF added unless the body is empty."""
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACES.sub(b" ", body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    if end == 0:
        return b""
    return body[:end] + b"\r\n" if end != len(body) - 2 else body
