"""The independent DKIM verifiers of ../shared/corpus/dkim/README.md, run offline: OpenDKIM 2.11
in test mode (keys from a TestPublicKeys file) and mailauth 4 (keys from a --dns-cache file).
Both are installed by `scripts/install --test`. Each returns one verdict per DKIM-Signature, in
header order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
MAILAUTH = REPO / ".tools" / "mailauth" / "node_modules" / ".bin" / "mailauth"

_OPENDKIM_RESULT = re.compile(r"dkim=(\w+)\b[^;]*?header\.s=([^\s;]+)")


@dataclass(frozen=True)
class Verdict:
    result: str  # pass, fail, permerror, neutral, ...
    selector: str | None
    detail: str = ""


def write_key_records(directory: Path, records: dict[str, str]) -> tuple[Path, Path]:
    """keys.txt (OpenDKIM TestPublicKeys: `NAME RECORD` per line) and dns.json (mailauth
    --dns-cache) for RECORDS, {SELECTOR._domainkey.DOMAIN: TXT value}."""
    directory.mkdir(parents=True, exist_ok=True)
    keys_txt = directory / "keys.txt"
    keys_txt.write_text("".join(f"{name} {value}\n" for name, value in records.items()))
    dns_json = directory / "dns.json"
    dns_json.write_text(json.dumps({name: {"TXT": [[value]]} for name, value in records.items()}))
    return keys_txt, dns_json


def opendkim(message: Path, keys_txt: Path) -> list[Verdict]:
    with tempfile.TemporaryDirectory(prefix="opendkim-") as directory:  # never beside the corpus
        conf = Path(directory) / "opendkim-test.conf"
        conf.write_text(
            f"Mode v\nTestPublicKeys {keys_txt.resolve()}\nSyslog no\nAlwaysAddARHeader yes\n"
        )
        completed = subprocess.run(
            [OPENDKIM, "-x", str(conf), "-t", message.name, "-vvv"],
            cwd=message.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    output = completed.stdout + completed.stderr
    start = output.find("hname='Authentication-Results'")
    assert start >= 0, output
    end = output.find("'\n", output.find("hvalue='", start) + 8)
    results = output[start:end]
    return [Verdict(result, selector) for result, selector in _OPENDKIM_RESULT.findall(results)]


def mailauth(message: Path, dns_json: Path) -> list[Verdict]:
    completed = subprocess.run(
        [str(MAILAUTH), "report", "--dns-cache", str(dns_json.resolve()), message.name],
        cwd=message.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(completed.stdout)
    return [
        Verdict(r["status"]["result"], r.get("selector"), r["status"].get("comment", ""))
        for r in report["dkim"]["results"]
    ]


def results(verdicts: list[Verdict]) -> list[str]:
    return [verdict.result for verdict in verdicts]
