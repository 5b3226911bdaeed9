"""Editing a message as bytes: header fields with their folded lines, the MIME tree located by
offsets (so one part can be replaced and the rest kept byte for byte), and the transfer
encodings a text part may use.

The email package parses; it never serialises here. `locate` finds the parts by their boundary
lines and checks the result against the email package's own parse: where the two disagree on
the structure, the message is not edited (`StructureError`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message

from relay.message_parsing import parse_message

__all__ = [
    "CRLF",
    "MAX_LINE",
    "Field",
    "Part",
    "StructureError",
    "b_word",
    "decode_transfer",
    "encode_transfer",
    "fields",
    "header_end",
    "join",
    "label",
    "locate",
    "long_lines",
    "make_field",
    "mime_version",
    "part_fields",
    "qp_encode",
    "replace_part",
    "set_field",
    "splice",
    "split",
    "transfer_encoding",
    "with_param",
]

CRLF = b"\r\n"
MAX_LINE = 998  # RFC 5322 §2.1.1: octets per line, without the CRLF
_MAX_DEPTH = 20
_MAX_PARTS = 500
_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})


class StructureError(Exception):
    """The MIME structure cannot be located safely (internal to the rewrite stage: the fixes
    turn it into `Unfixable`)."""


# -- header section ------------------------------------------------------------------------

_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def header_end(message: bytes, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Where the header section of message[start:end] ends and where its body starts. The
    header section ends at the empty line, or (as the email package reads it) at the first
    line that is neither a field nor a continuation, which then starts the body."""
    end = len(message) if end is None else end
    position = start
    while position < end:
        if message.startswith(CRLF, position):
            return position, position + 2
        line_end = message.find(CRLF, position, end)
        line_end = end if line_end < 0 else line_end + 2
        line = message[position:line_end]
        unixfrom = position == start and line.startswith(b"From ")  # an mbox separator
        if not (line[:1] in (b" ", b"\t") or _NAME.match(line) or unixfrom):
            return position, position
        position = line_end
    return end, end


def split(message: bytes) -> tuple[bytes, bytes]:
    """(header section with the CRLF of its last field, the rest: the empty line and the body).
    A message without an empty line is all header, up to a line that is no field."""
    header, _ = header_end(message)
    return message[:header], message[header:]


@dataclass(frozen=True, slots=True)
class Field:
    """One header field as written: its name and every line (continuations included)."""

    name: str  # "" for a line that is no field (kept as it was)
    raw: bytes

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def value(self) -> str:
        """The value, unfolded and stripped; 8-bit octets as surrogate escapes of UTF-8."""
        _, _, value = self.raw.partition(b":")
        unfolded = re.sub(rb"\r?\n(?=[ \t])", b"", value).rstrip(b"\r\n")
        return unfolded.decode("utf-8", "surrogateescape").strip()


def _lines(data: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        end = data.find(CRLF, start)
        end = len(data) if end < 0 else end + 2
        yield data[start:end]
        start = end


def fields(header: bytes) -> list[Field]:
    """The fields of a header section, in order; joining them gives the section back (with a
    CRLF added after the last line if it had none)."""
    found: list[Field] = []
    for line in _lines(header):
        if line[:1] in (b" ", b"\t") and found:
            last = found[-1]
            found[-1] = Field(last.name, last.raw + line)
            continue
        match = _NAME.match(line)
        found.append(Field(match.group(1).decode("ascii") if match else "", line))
    if found and not found[-1].raw.endswith(CRLF):  # a message that is all header, unended
        found[-1] = Field(found[-1].name, found[-1].raw + CRLF)
    return found


def join(items: Iterable[Field]) -> bytes:
    return b"".join(item.raw for item in items)


def make_field(name: str, *lines: str) -> Field:
    """A field from its name and value; more than one line folds the value there (each further
    line must start with white space)."""
    text = f"{name}: " + "\r\n".join(lines) + "\r\n"
    return Field(name, text.encode("utf-8"))


def b_word(text: str) -> str:
    """`text` as one RFC 2047 encoded-word in UTF-8, "B" encoding."""
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


# -- MIME tree -----------------------------------------------------------------------------


@dataclass(slots=True)
class Part:
    """A body part located in the message bytes: message[start:body] is its header section
    (with the empty line), message[body:end] its body, excluding the CRLF that belongs to the
    next boundary line (RFC 2046 §5.1.1)."""

    path: str  # IMAP-style section number: "" for the message, "1", "1.2", ...
    start: int
    body: int
    end: int
    parsed: Message  # the email package's view of the same part
    children: list[Part] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.parsed.get_content_type()

    def leaves(self) -> Iterator[Part]:
        if not self.children:
            yield self
        for child in self.children:
            yield from child.leaves()


def _body_offset(message: bytes, start: int, end: int) -> int:
    return header_end(message, start, end)[1]


def _delimiters(message: bytes, boundary: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """(line start, next line start, closing) of each boundary line in message[start:end]."""
    pattern = re.compile(
        rb"^--" + re.escape(boundary.encode("utf-8", "surrogateescape")) + rb"(--)?[ \t]*\r?$",
        re.MULTILINE,
    )
    found: list[tuple[int, int, bool]] = []
    for match in pattern.finditer(message, start, end):
        after = message.find(b"\n", match.end(), end)
        found.append((match.start(), end if after < 0 else after + 1, bool(match.group(1))))
        if match.group(1):
            break
    return found


def _locate(message: bytes, parsed: Message, path: str, start: int, end: int, depth: int) -> Part:
    part = Part(path, start, _body_offset(message, start, end), end, parsed)
    if not parsed.is_multipart() or parsed.get_content_maintype() != "multipart":
        return part  # a leaf; an attached message (message/rfc822) is one too
    boundary = parsed.get_boundary()
    children = parsed.get_payload()
    if depth >= _MAX_DEPTH or boundary is None or not isinstance(children, list):
        raise StructureError(f"part {path or 'message'}: multipart without a usable boundary")
    lines = _delimiters(message, boundary, part.body, end)
    ranges: list[tuple[int, int]] = []
    for index, (_, next_line, closing) in enumerate(lines):
        if closing:
            break
        following = lines[index + 1] if index + 1 < len(lines) else None
        if following is None:
            child_end = end
        else:
            child_end = following[0]
            if child_end - 2 >= next_line and message[child_end - 2 : child_end] == CRLF:
                child_end -= 2
        ranges.append((next_line, child_end))
    if len(ranges) != len(children):
        raise StructureError(
            f"part {path or 'message'}: {len(ranges)} parts found by boundary,"
            f" the email package sees {len(children)}"
        )
    for number, ((child_start, child_end), child) in enumerate(zip(ranges, children, strict=True)):
        if not isinstance(child, Message):
            raise StructureError(f"part {path or 'message'}: unreadable child")
        child_path = f"{path}.{number + 1}" if path else str(number + 1)
        located = _locate(message, child, child_path, child_start, child_end, depth + 1)
        found = parse_message(message[child_start : located.body]).get("Content-Type")
        if str(found or "") != str(child.get("Content-Type") or ""):
            raise StructureError(f"part {child_path}: located part is not the parsed one")
        part.children.append(located)
    return part


def locate(message: bytes, parsed: Message | None = None) -> Part:
    """The MIME tree of `message` with byte offsets, checked against `parsed` (the email
    package's parse of the same bytes, made here when not given)."""
    tree = _locate(message, parsed or parse_message(message), "", 0, len(message), 0)
    if sum(1 for _ in tree.leaves()) > _MAX_PARTS:
        raise StructureError(f"more than {_MAX_PARTS} parts")
    return tree


# -- transfer encodings --------------------------------------------------------------------


def transfer_encoding(part: Message) -> str:
    """The part's Content-Transfer-Encoding, lower-cased; "" when absent (7bit)."""
    value = part.get("Content-Transfer-Encoding")
    return str(value).strip().lower() if value is not None else ""


def decode_transfer(body: bytes, encoding: str) -> bytes | None:
    """The octets a part carries; None for an encoding relay does not write back
    (x-uuencode, an unknown token)."""
    if encoding in _IDENTITY:
        return body
    if encoding == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            return None
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    return None


def encode_transfer(data: bytes, encoding: str, trailing_crlf: bool) -> bytes:
    """`data` in `encoding` (one of those decode_transfer reads), ending with a CRLF if
    `trailing_crlf`."""
    if encoding in _IDENTITY:
        encoded = data
    elif encoding == "base64":
        text = base64.b64encode(data)
        encoded = CRLF.join(text[i : i + 76] for i in range(0, len(text), 76))
    elif encoding == "quoted-printable":
        encoded = qp_encode(data)
    else:
        raise ValueError(f"cannot encode {encoding!r}")
    if trailing_crlf and not encoded.endswith(CRLF):
        encoded += CRLF
    return encoded


_QP_LITERAL = frozenset(range(33, 127)) - {ord("=")}


def qp_encode(data: bytes, width: int = 76) -> bytes:
    """Quoted-printable (RFC 2045 §6.7) of text whose line breaks are CRLF: every line at most
    `width` characters, soft breaks never inside an =XX escape, trailing white space encoded."""
    out: list[str] = []
    for line in data.split(CRLF):
        tokens = [
            chr(octet) if octet in _QP_LITERAL or octet in (9, 32) else f"={octet:02X}"
            for octet in line
        ]
        if tokens and line[-1] in (9, 32):
            tokens[-1] = f"={line[-1]:02X}"
        current = ""
        for token in tokens:
            if len(current) + len(token) > width - 1:
                out.append(current + "=")
                current = ""
            current += token
        out.append(current)
    return "\r\n".join(out).encode("ascii")


# -- replacing a part ----------------------------------------------------------------------


def part_fields(message: bytes, part: Part) -> tuple[list[Field], bytes]:
    """The header fields of `part` and what follows them up to its body (the empty line)."""
    header, separator = split(message[part.start : part.body])
    return fields(header), separator


def set_field(items: list[Field], new: Field) -> list[Field]:
    """`items` with every field of `new`'s name replaced by `new`, where the first stood (at the
    end when there was none)."""
    key = new.key
    first = next((n for n, item in enumerate(items) if item.key == key), len(items))
    kept = [item for n, item in enumerate(items) if item.key != key or n == first]
    position = sum(1 for item in items[:first] if item.key != key)
    if first < len(items):
        kept[position] = new
    else:
        kept.append(new)
    return kept


def with_param(content_type: str, name: str, value: str) -> str:
    """A Content-Type value with parameter `name` set to `value`, the others kept."""
    scratch = Message()
    scratch["Content-Type"] = content_type
    scratch.set_param(name, value)
    return " ".join(str(scratch["Content-Type"]).split())


def splice(message: bytes, edits: Iterable[tuple[int, int, bytes]]) -> bytes:
    """`message` with each (start, end, replacement) applied; the ranges must not overlap."""
    result = message
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        result = result[:start] + replacement + result[end:]
    return result


def long_lines(data: bytes) -> bool:
    """A line of `data` is longer than 998 octets without its line break."""
    return any(len(line) > MAX_LINE for line in data.splitlines())


def replace_part(
    message: bytes, part: Part, items: list[Field], body: bytes
) -> tuple[int, int, bytes]:
    """The edit that gives `part` the header `items` and the (encoded) `body`."""
    _, separator = part_fields(message, part)
    return part.start, part.end, join(items) + (separator or CRLF) + body


def label(part: Part) -> str:
    """How a change names a body part: `body 1.2 text/html`, `body text/plain` for the message."""
    return f"body {part.path} {part.content_type}" if part.path else f"body {part.content_type}"


def mime_version(items: list[Field]) -> list[Field]:
    """A top-level header section with `MIME-Version: 1.0` added if it has none (needed when a
    fix gives a non-MIME message a transfer encoding or a charset)."""
    if any(item.key == "mime-version" for item in items):
        return items
    return [*items, make_field("MIME-Version", "1.0")]
