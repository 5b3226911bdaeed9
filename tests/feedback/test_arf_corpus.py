"""Complaint reports against the public ARF corpus (../shared/corpus/arf): every manifest row's
feedback type, recipient and message id; mail-auth's own parse results field by field; and input
that is broken or not a report at all, which must give an answer and never raise."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

from relay.feedback.complaints import parse
from relay.feedback.model import ComplaintRecord
from tests.support.paths import CORPUS

ARF = CORPUS / "arf"


@dataclass(frozen=True)
class Row:
    file: str
    feedback_type: str
    original_recipient: str
    original_message_id: str
    format: str
    index: int


def _rows() -> list[Row]:
    manifest = ARF / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="") as handle:
        return [
            Row(
                file=line["file"],
                feedback_type=line["feedback_type"],
                original_recipient=line["original_recipient"],
                original_message_id=line["original_message_id"],
                format=line["format"],
                index=int(line["index"]),
            )
            for line in csv.DictReader(handle)
        ]


ROWS = _rows()
ROWS_PER_FILE = Counter(row.file for row in ROWS)
MAIL_AUTH = sorted((ARF / "eml").glob("mail-auth-*.json"))

# mail-auth-001 is RFC 5965's Appendix B.1 example: its enclosed "Message-ID:
# 8787KJKJ3K4J3K4J3K4J3.mail@example.net" lacks the angle brackets of RFC 5322 §3.6.4. The
# manifest copies the header; relay, like Sisimai for arf-11 (the same defect, manifest empty),
# reads only a well-formed msg-id.
MALFORMED_MESSAGE_ID = {"eml/mail-auth-001.eml"}

# mail-auth spells its Rust enums by variant name ("Unspecified" when the field is absent) and
# writes 0 for an absent Source-Port; relay keeps the report's own tokens and None.
MAIL_AUTH_ENUMS = {"feedback_type", "auth_failure", "delivery_result", "identity_alignment"}
MAIL_AUTH_SPELLING = {
    "Abuse": "abuse",
    "AuthFailure": "auth-failure",
    "BodyHash": "bodyhash",
    "Dmarc": "dmarc",
    "Unspecified": None,
}
# mail-auth's own test clears "message" (the enclosed message's bytes) before comparing.
MAIL_AUTH_NOT_COMPARED = {"message"}
FIELD_KEYS = (
    {key for path in MAIL_AUTH for key in json.loads(path.read_text())} - MAIL_AUTH_NOT_COMPARED
) | {"removal_recipient"}

REPORT = b"""From: feedback@isp.example
To: fbl@relay.example
Subject: FW: Spring sale
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b1"

--b1
Content-Type: text/plain

This is an email abuse report.

--b1
Content-Type: message/feedback-report

Feedback-Type: Abuse
User-Agent: ISP-FBL/1.0
Version: 1
%(fields)s
--b1
Content-Type: message/rfc822

From: shop@relay.example
To: %(to)s
Subject: Spring sale
Message-ID: <sale-1@relay.example>

Buy now.
--b1--
"""


def report(fields: bytes = b"", to: bytes = b"customer@isp.example") -> bytes:
    return REPORT % {b"fields": fields, b"to": to}


def records(file: str) -> list[ComplaintRecord]:
    return parse((ARF / file).read_bytes())


def bare(address: str | None) -> str | None:
    return parseaddr(address)[1] if address else None


def mail_auth_value(key: str, value: Any) -> Any:
    if key in MAIL_AUTH_ENUMS:
        return MAIL_AUTH_SPELLING[value]
    if key == "source_port" and value == 0:
        return None
    return value


def test_corpus_is_there():
    assert len(ROWS) >= 15, f"no ARF manifest under {ARF}"
    assert len(MAIL_AUTH) == 5


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{Path(row.file).stem}#{row.index}")
def test_manifest_row(row: Row):
    found = records(row.file)
    assert len(found) == ROWS_PER_FILE[row.file]
    record = found[row.index - 1]
    assert record.feedback_type == row.feedback_type
    if row.format == "mail-auth-arf":
        # This column is "the report's Original-Rcpt-To per mail-auth's JSON" (corpus README);
        # original_recipient also falls back to the enclosed To:, see the test below.
        assert bare(record.fields["original_rcpt_to"]) == (row.original_recipient or None)
        if row.original_recipient:
            assert record.original_recipient == row.original_recipient
    else:
        assert record.original_recipient == (row.original_recipient or None)
    if row.file in MALFORMED_MESSAGE_ID:
        assert record.original_message_id is None
    else:
        assert record.original_message_id == (row.original_message_id or None)


@pytest.mark.parametrize(
    ("file", "recipient"),
    [
        ("eml/arf-19.eml", "kijitora@example.org"),
        ("eml/arf-20.eml", "kijitora@example.org"),
        ("eml/mail-auth-004.eml", "address@myotherdomain.name"),
        ("eml/mail-auth-005.eml", "someuser@receiver.example"),
    ],
)
def test_without_original_rcpt_to_the_enclosed_to_is_the_recipient(file, recipient):
    """The set-of-emails convention (Sisimai), which mail-auth does not follow."""
    (record,) = records(file)
    assert record.fields["original_rcpt_to"] is None
    assert record.original_recipient == recipient


@pytest.mark.parametrize("file", ["eml/arf-11.eml", "eml/mail-auth-001.eml"])
def test_message_id_without_angle_brackets_is_not_read(file):
    (record,) = records(file)
    assert record.original_message_id is None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (path.stem, key)
        for path in MAIL_AUTH
        for key in json.loads(path.read_text())
        if key not in MAIL_AUTH_NOT_COMPARED
    ],
)
def test_mail_auth_field(name, key):
    expected = json.loads((ARF / "eml" / f"{name}.json").read_text())[key]
    (record,) = records(f"eml/{name}.eml")
    assert record.fields[key] == mail_auth_value(key, expected)


@pytest.mark.parametrize("file", sorted(ROWS_PER_FILE))
def test_every_record_has_every_field(file):
    for record in records(file):
        assert set(record.fields) == FIELD_KEYS
        assert record.source_ip == record.fields["source_ip"]


def test_opt_out_keeps_the_removal_recipient_apart():
    """arf-12 names user@example.com only as the address to remove, and encloses its headers
    as "text/rfc822-header" (sic), which is no enclosed message: nobody is named."""
    (record,) = records("eml/arf-12.eml")
    assert record.feedback_type == "opt-out"
    assert record.original_recipient is None
    assert record.fields["removal_recipient"] == ["user@example.com"]


def test_microsoft_report_takes_the_source_ip_from_the_subject():
    (record,) = records("eml/arf-22.eml")
    assert (record.feedback_type, record.source_ip) == ("abuse", "192.0.2.222")


def test_microsoft_report_known_by_sender_and_subject():
    raw = (ARF / "eml" / "arf-22.eml").read_bytes().replace(b"X-HmXmrOriginalRecipient", b"X-Ok")
    (record,) = parse(raw)
    assert record.original_recipient == "kijitora@example.com"  # the enclosed To:
    assert record.original_message_id == "0000000000fffffffff0000000000000@example.com"


def test_one_record_per_original_rcpt_to():
    raw = report(
        b"Original-Rcpt-To: <a@isp.example>\n"
        b"Original-Rcpt-To: rfc822; b@isp.example\n"
        b"Original-Rcpt-To: a@isp.example\n"
        b"Source-IP: 192.0.2.7 (mta.relay.example)\n"
        b"Reported-Domain: relay.example\n"
    )
    found = parse(raw)
    assert [record.original_recipient for record in found] == ["a@isp.example", "b@isp.example"]
    for record in found:
        assert record.feedback_type == "abuse"
        assert record.original_message_id == "sale-1@relay.example"
        assert (record.source_ip, record.reported_domain) == ("192.0.2.7", "relay.example")
    assert found[0].fields is not found[1].fields


def test_report_naming_nobody_is_one_record_without_recipient():
    (record,) = parse(report(to=b"undisclosed-recipients:;"))
    assert record.original_recipient is None
    assert record.original_message_id == "sale-1@relay.example"


def test_report_with_crlf_line_endings_reads_the_same():
    raw = (ARF / "eml" / "mail-auth-005.eml").read_bytes()
    assert parse(raw.replace(b"\n", b"\r\n")) == parse(raw)


def test_truncated_after_the_feedback_part_keeps_what_it_says():
    raw = report(b"Original-Rcpt-To: a@isp.example\n")
    (record,) = parse(raw[: raw.index(b"Content-Type: message/rfc822")])
    assert (record.feedback_type, record.original_recipient) == ("abuse", "a@isp.example")
    assert record.original_message_id is None


def test_truncated_before_the_feedback_type_is_no_report():
    raw = report()
    assert parse(raw[: raw.index(b"Feedback-Type")]) == []


@pytest.mark.parametrize("file", sorted(ROWS_PER_FILE))
def test_every_truncation_of_a_report_gives_an_answer(file):
    raw = (ARF / file).read_bytes()
    for end in range(0, len(raw), 7):
        for record in parse(raw[:end]):
            assert isinstance(record, ComplaintRecord)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 64,
        random.Random(6).randbytes(4096),
        b"From: a@example.org\nTo: b@example.net\nSubject: hi\n\nhello\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
        b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        b"Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\nSubject: holiday photos\n\n--b\n"
        b"Content-Type: message/rfc822\n\nTo: a@example.net\n\nhi\n--b--\n",
        b"Content-Type: message/rfc822\n\n" * 2000,
    ],
    ids=["empty", "binary", "random", "plain", "dsn", "forward", "nested"],
)
def test_not_a_complaint_report(raw):
    assert parse(raw) == []
