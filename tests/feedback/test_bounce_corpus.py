"""The bounce classifier against the public corpus (../shared/corpus/bounces): field-by-field
agreement with Sisimai's expectations, with the floors the held-out set is measured against."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from relay.feedback.bounces import classify
from relay.feedback.model import BounceRecord
from tests.feedback.conftest import AGREEMENT_REPORT
from tests.support.paths import CORPUS

BOUNCES = CORPUS / "bounces"
RECIPIENT_FLOOR = 0.98
HARD_FLOOR = 0.97
REASON_FLOOR = 0.90


def _status_agrees(expected: str, got: str | None) -> bool:
    """Sisimai's pseudo codes X.0.9NN say only the class (corpus README)."""
    if not expected:
        return True
    detail = expected.split(".")[-1]
    if len(detail) == 3 and detail.startswith("9"):
        return got is not None and got[:1] == expected[:1]
    return got == expected


@dataclass
class Tally:
    agree: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, ok: bool) -> None:
        self.total[key] += 1
        self.agree[key] += ok

    def share(self, key: str) -> float:
        return self.agree[key] / self.total[key] if self.total[key] else 1.0

    def worst(self, limit: int | None = 12) -> str:
        rows = sorted(self.total, key=lambda key: (self.share(key), key))[:limit]
        return ", ".join(f"{key} {self.agree[key]}/{self.total[key]}" for key in rows)


@dataclass
class Agreement:
    fields: Tally = field(default_factory=Tally)
    reasons: Tally = field(default_factory=Tally)
    formats: Tally = field(default_factory=Tally)
    misses: list[str] = field(default_factory=list)

    def report(self) -> str:
        """Every figure: per field, per reason, per format (worst first)."""
        return (
            self.summary().partition("\nworst reasons")[0]
            + f"\nper reason: {self.reasons.worst(None)}\nper format: {self.formats.worst(None)}"
        )

    def summary(self) -> str:
        tally = self.fields
        figures = ", ".join(
            f"{name} {tally.share(name):.1%} ({tally.agree[name]}/{tally.total[name]})"
            for name in ("recipient", "hard", "reason", "status", "replycode")
        )
        return (
            f"agreement: {figures}\nworst reasons: {self.reasons.worst()}\n"
            f"worst formats: {self.formats.worst()}\nfirst misses:\n  "
            + "\n  ".join(self.misses[:40])
        )


def _pick(records: list[BounceRecord], row: dict[str, str], index: int) -> BounceRecord | None:
    """The record a manifest row is about: the one with its recipient, else by position."""
    wanted = row["recipient"].lower()
    for record in records:
        if wanted and (record.recipient or "").lower() == wanted:
            return record
    return records[index] if index < len(records) else None


def _rows() -> Iterator[tuple[str, list[dict[str, str]]]]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (BOUNCES / "manifest.csv").open(newline="") as manifest:
        for row in csv.DictReader(manifest):
            grouped[row["file"]].append(row)
    yield from grouped.items()


@pytest.fixture(scope="module")
def agreement(request: pytest.FixtureRequest) -> Agreement:
    """The corpus classified; the figures per field, reason and format are printed at the end
    of the test run (tests/feedback/conftest.py)."""
    result = Agreement()
    request.config.stash[AGREEMENT_REPORT] = result.report
    for name, rows in _rows():
        records = classify((BOUNCES / name).read_bytes())
        for index, row in enumerate(rows):
            got = _pick(records, row, index)
            if row["recipient"]:
                ok = got is not None and (got.recipient or "").lower() == row["recipient"].lower()
                result.fields.add("recipient", ok)
            hard = got is not None and got.hard == (row["hard_bounce"] == "true")
            result.fields.add("hard", hard)
            reason = got is not None and got.reason == row["reason"]
            result.fields.add("reason", reason)
            result.reasons.add(row["reason"], reason)
            result.formats.add(row["format"], reason and hard)
            if row["status"]:
                result.fields.add("status", _status_agrees(row["status"], got and got.status))
            if row["replycode"]:
                replycode = got is not None and str(got.replycode) == row["replycode"]
                result.fields.add("replycode", replycode)
            if not (reason and hard):
                result.misses.append(
                    f"{name}: want {row['reason']}/{row['hard_bounce']}, got "
                    + (f"{got.reason}/{got.hard} {got.status}" if got else "nothing")
                )
    return result


def test_recipient_floor(agreement: Agreement) -> None:
    assert agreement.fields.share("recipient") >= RECIPIENT_FLOOR, agreement.summary()


def test_hard_soft_floor(agreement: Agreement) -> None:
    assert agreement.fields.share("hard") >= HARD_FLOOR, agreement.summary()


def test_reason_floor(agreement: Agreement) -> None:
    assert agreement.fields.share("reason") >= REASON_FLOOR, agreement.summary()


@pytest.mark.parametrize(
    "path", sorted((BOUNCES / "not-bounce").glob("*.eml")), ids=lambda path: Path(path).name
)
def test_not_a_bounce_yields_no_record(path: Path) -> None:
    assert classify(path.read_bytes()) == []


def test_every_sample_classifies_without_error() -> None:
    for path in sorted((BOUNCES / "eml").glob("*.eml")):
        classify(path.read_bytes())


def test_crlf_copies_classify_as_the_lf_originals() -> None:
    """Bounces arrive over SMTP with CRLF line ends; the corpus files have LF."""
    for path in sorted((BOUNCES / "eml").glob("*.eml")):
        original = path.read_bytes()
        crlf = re.sub(rb"\r?\n", b"\r\n", original)
        assert classify(crlf) == classify(original), path.name
