"""`relay complaints parse FILE...` as an operator runs it (DESIGN §4)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from relay.feedback.complaints import parse
from tests.support.paths import CORPUS

ARF = CORPUS / "arf"
KEYS = [
    "file",
    "feedback_type",
    "original_recipient",
    "original_message_id",
    "source_ip",
    "reported_domain",
]


def _parse(*files: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", "complaints", "parse", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _manifest() -> dict[Path, list[dict[str, str]]]:
    rows: dict[Path, list[dict[str, str]]] = defaultdict(list)
    with (ARF / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[ARF / row["file"]].append(row)
    return rows


def test_every_corpus_report_prints_one_line_per_recipient():
    manifest = _manifest()
    result = _parse(*manifest)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = _lines(result.stdout)
    assert all(list(line) == KEYS for line in lines)
    printed: dict[str, list[dict[str, object]]] = defaultdict(list)
    for line in lines:
        printed[str(line["file"])].append(line)
    for path, rows in manifest.items():
        got = printed[str(path)]
        assert [line["feedback_type"] for line in got] == [row["feedback_type"] for row in rows]
        assert got == [record.to_json(str(path)) for record in parse(path.read_bytes())]


def test_report_naming_nobody_prints_a_line_with_null_recipient():
    path = ARF / "eml" / "arf-11.eml"
    result = _parse(path)
    assert result.returncode == 0, result.stderr
    assert _lines(result.stdout) == [
        {
            "file": str(path),
            "feedback_type": "abuse",
            "original_recipient": None,
            "original_message_id": None,
            "source_ip": None,
            "reported_domain": None,
        }
    ]


def test_file_is_printed_as_given(tmp_path):
    (tmp_path / "fbl.eml").write_bytes((ARF / "eml" / "arf-25.eml").read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "relay", "complaints", "parse", "./fbl.eml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (line,) = _lines(result.stdout)
    assert line["file"] == "./fbl.eml"
    assert line["original_recipient"] == "hashed@example.com"


def test_what_is_not_a_report_prints_nothing(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 16)
    plain = tmp_path / "plain.eml"
    plain.write_bytes(b"From: a@example.org\nTo: b@example.net\nSubject: hi\n\nhello\n")
    truncated = tmp_path / "truncated.eml"
    truncated.write_bytes((ARF / "eml" / "arf-02.eml").read_bytes()[:900])
    result = _parse(junk, plain, truncated, ARF / "eml" / "mail-auth-001.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_unreadable_file_is_named_and_the_others_still_parsed(tmp_path):
    missing = tmp_path / "missing.eml"
    good = ARF / "eml" / "arf-02.eml"
    result = _parse(missing, tmp_path, good)
    assert result.returncode == 1
    assert f"relay: cannot read {missing}: No such file or directory" in result.stderr
    assert f"relay: cannot read {tmp_path}: Is a directory" in result.stderr
    assert "Traceback" not in result.stderr
    (line,) = _lines(result.stdout)
    assert line["original_recipient"] == "this-local-part-does-not-exist-on-yahoo@yahoo.com"


def test_no_file_is_a_usage_error():
    result = _parse()
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
    assert "Traceback" not in result.stderr
