"""`relay bounces classify FILE...` as an operator runs it (DESIGN §4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import CORPUS

BOUNCES = CORPUS / "bounces"
KEYS = {"file", "recipient", "reason", "category", "hard", "status", "replycode"}

DSN_HEAD = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: shop@example.org
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

The mail system could not deliver your message.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

"""


def _classify(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", "bounces", "classify", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_one_exact_json_object_per_recipient() -> None:
    sample = BOUNCES / "eml" / "lhost-postfix-01.eml"
    result = _classify(sample)
    assert result.returncode == 0, result.stderr
    lines = _lines(result)
    assert lines
    assert all(set(line) == KEYS for line in lines)
    assert lines[0]["file"] == str(sample)
    assert isinstance(lines[0]["hard"], bool)


def test_not_a_bounce_prints_nothing() -> None:
    negatives = sorted((BOUNCES / "not-bounce").glob("*.eml"))
    vacation = BOUNCES / "eml" / "rfc3834-02.eml"
    result = _classify(*negatives, vacation)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_unreadable_file_is_reported_and_the_others_still_classified(tmp_path: Path) -> None:
    sample = BOUNCES / "eml" / "lhost-postfix-01.eml"
    result = _classify(tmp_path / "missing.eml", sample)
    assert result.returncode == 1
    assert "missing.eml: cannot read" in result.stderr
    assert "Traceback" not in result.stderr
    assert [line["file"] for line in _lines(result)] == [str(sample)]


def test_truncated_mime_and_junk_give_an_answer(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.eml"
    truncated.write_bytes(
        DSN_HEAD + b"Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1"
    )
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 64)
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = _classify(truncated, junk, empty)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = _lines(result)
    assert [line["recipient"] for line in lines] == ["gone@example.net"]
    assert lines[0]["file"] == str(truncated)


def test_report_naming_no_recipient_prints_nothing(tmp_path: Path) -> None:
    report = tmp_path / "norecipient.eml"
    report.write_bytes(DSN_HEAD + b"Action: failed\nStatus: 5.2.2\n\n--b1--\n")
    result = _classify(report)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_fifty_megabyte_bounce(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    with big.open("wb") as out:
        out.write(DSN_HEAD)
        out.write(b"Final-Recipient: rfc822; full@example.net\nAction: failed\nStatus: 5.2.2\n")
        out.write(b"Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n\n--b1\n")
        out.write(b"Content-Type: message/rfc822\n\nSubject: big\n\n")
        line = b"x" * 76 + b"\n"
        out.write(line * (50 * 1024 * 1024 // len(line)))
    result = _classify(big)
    assert result.returncode == 0, result.stderr
    [record] = _lines(result)
    assert record["recipient"] == "full@example.net"
    assert record["reason"] == "mailboxfull"
