"""Bounce classification rate and agreement on the public bounce corpus, side by side with
Debian's Mail::DeliveryStatus::BounceParser (libmail-deliverystatus-bounceparser-perl) driven
by one perl process over the same files. See bench/README.md."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from relay.feedback.bounces import classify

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bounces"
# BounceParser's std_reason values that mean the address will never work (its own vocabulary).
PERL_HARD = {"user_unknown", "domain_error"}
PERL_DRIVER = r"""
use strict; use warnings;
use Mail::DeliveryStatus::BounceParser;
use JSON::PP; use Time::HiRes qw(time);
my $json = JSON::PP->new->canonical;
my @messages = map {
  local $/; open(my $fh, '<:raw', $_) or die "$_: $!"; [$_, scalar <$fh>]
} @ARGV;
my $start = time;
my @out;
for my $m (@messages) {
  my $bounce = eval { Mail::DeliveryStatus::BounceParser->new($m->[1]) };
  my @reports = ($bounce && $bounce->is_bounce) ? $bounce->reports : ();
  push @out, [$m->[0], [map { {email => scalar $_->get('email'),
                               std_reason => scalar $_->get('std_reason')} } @reports]];
}
my $elapsed = time - $start;
print $json->encode({elapsed => $elapsed, results => \@out}), "\n";
"""


def _expected() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (CORPUS / "manifest.csv").open(newline="") as manifest:
        for row in csv.DictReader(manifest):
            rows[row["file"]].append(row)
    return rows


def _agreement(
    expected: dict[str, list[dict[str, str]]], got: dict[str, list[tuple[str | None, bool]]]
) -> tuple[float, float]:
    """(recipient agreement over rows naming one, hard/soft agreement over all rows)."""
    recipients = named = hard = total = 0
    for name, rows in expected.items():
        records = got.get(name, [])
        for index, row in enumerate(rows):
            wanted = row["recipient"].lower()
            match = next((r for r in records if wanted and (r[0] or "").lower() == wanted), None)
            pick = match or (records[index] if index < len(records) else None)
            total += 1
            hard += pick is not None and pick[1] == (row["hard_bounce"] == "true")
            if wanted:
                named += 1
                recipients += match is not None
    return recipients / named, hard / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the corpus for relay")
    args = parser.parse_args()
    expected = _expected()
    files = [CORPUS / name for name in expected]
    messages = [(path, path.read_bytes()) for path in files]

    start = time.perf_counter()
    for _ in range(args.rounds):
        results = {str(path.relative_to(CORPUS)): classify(raw) for path, raw in messages}
    elapsed = time.perf_counter() - start
    relay_rate = len(messages) * args.rounds / elapsed
    ours = {name: [(r.recipient, r.hard) for r in records] for name, records in results.items()}
    figures: dict[str, object] = {"messages": len(messages), "relay_messages_per_s": relay_rate}
    figures["relay_recipient_agreement"], figures["relay_hard_agreement"] = _agreement(
        expected, ours
    )

    if shutil.which("perl"):
        perl = subprocess.run(
            ["perl", "-e", PERL_DRIVER, *map(str, files)], capture_output=True, text=True
        )
        if perl.returncode == 0:
            report = json.loads(perl.stdout)
            theirs = {
                str(Path(name).relative_to(CORPUS)): [
                    (item["email"], item["std_reason"] in PERL_HARD) for item in items
                ]
                for name, items in report["results"]
            }
            figures["bounceparser_messages_per_s"] = len(files) / report["elapsed"]
            recipient, hard = _agreement(expected, theirs)
            figures["bounceparser_recipient_agreement"] = recipient
            figures["bounceparser_hard_agreement"] = hard
        else:
            print(f"BounceParser not run: {perl.stderr.strip()[:300]}", file=sys.stderr)
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
