"""The byte-level helpers: quoted-printable, header fields, locating parts."""

from __future__ import annotations

import binascii

import pytest

from relay.message_parsing import parse_message
from relay.rewrite import raw
from tests.rewrite.messages import MESSAGES, TEXT_LEAVES, parts


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain\r\n",
        b"trailing space \r\ntab\t\r\n",
        b"a=b \xc3\xa4\xe4\xbd\xa0\r\n",
        b"x" * 300 + b"\r\n",
        "长".encode() * 200,
        bytes(range(256)),
        b"bare\rcr and bare\nlf",
    ],
)
def test_quoted_printable_round_trip(data: bytes) -> None:
    encoded = raw.qp_encode(data)
    assert encoded.isascii()
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert not any(line.endswith((b" ", b"\t")) for line in encoded.split(b"\r\n"))
    assert binascii.a2b_qp(encoded) == data


def test_fields_keep_folded_lines_and_odd_lines() -> None:
    header = b"A: 1\r\n\t2\r\nB : x\r\n"
    items = raw.fields(header)
    assert [(i.name, i.value) for i in items] == [("A", "1\t2"), ("B", "x")]
    assert raw.join(items) == header
    assert raw.split(b"A: 1\r\nnot a field\r\nbody\r\n") == (
        b"A: 1\r\n",
        b"not a field\r\nbody\r\n",
    )
    assert raw.split(b"From x  Mon\r\nA: 1\r\n\r\nb") == (b"From x  Mon\r\nA: 1\r\n", b"\r\nb")


@pytest.mark.parametrize("name", list(MESSAGES))
def test_located_parts_are_the_parsed_ones(name: str) -> None:
    located = parts(MESSAGES[name])
    for path in TEXT_LEAVES[name]:
        part = located[path]
        body = MESSAGES[name][part.body : part.end]
        decoded = raw.decode_transfer(body, raw.transfer_encoding(part.parsed))
        assert decoded is not None
        assert decoded.rstrip(b"\r\n") == (part.parsed.get_payload(decode=True) or b"").rstrip(
            b"\r\n"
        )


def test_a_boundary_mismatch_is_refused() -> None:
    message = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"
    )
    assert len(raw.locate(message).children) == 1
    parsed = parse_message(message)
    parsed.set_boundary("other")
    with pytest.raises(raw.StructureError):
        raw.locate(message, parsed)
