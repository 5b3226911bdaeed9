"""DKIM signing benchmark: signatures per second of relay's whole DKIM step (Signer.sign: header
parsing, From domain, body hash, header hash, DKIM-Signature field, private-key operation) for
RSA-2048, Ed25519 and both, on ~10 KB and ~100 KB messages, next to the machine's limit measured
in the same run (`openssl speed -seconds 3 rsa2048`, one core) and to dkimpy signing alone.

Everything runs in this process, on one core, with keys made by relay.signing.generate in a
temporary directory. Each figure is the number of signatures in --seconds of back-to-back calls.

    .venv/bin/python bench/signing.py
    .venv/bin/python bench/signing.py --seconds 5 --sizes 10240,102400,1048576
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import dkim
from dkim.canonicalization import Relaxed

from relay.config.model import DkimKey, DkimSettings
from relay.signing import KeyRing, Signer, SigningKey, generate, load_keys
from relay.signing.signer import _signature_field, header_list

DOMAIN = "shop.example"
TARGET_RATIO = 0.5  # relay's RSA step at 10 KB within 2x of openssl speed's sign/s
WARMUP = 20


def message_of_size(size: int) -> bytes:
    """A bulk HTML newsletter (text + quoted-printable HTML with indentation, one-click
    unsubscribe) of about SIZE bytes."""
    rows = max(1, size // 500)
    for _ in range(3):  # a few corrections bring it within a row (~0.5 KB)
        rows = max(1, round(rows * size / len(newsletter(rows))))
    return newsletter(rows)


def newsletter(items: int) -> bytes:
    message = EmailMessage(policy=email_policy.SMTP)
    message["From"] = '"Shop Example" <news@shop.example>'
    message["To"] = "Customer <customer@example.org>"
    message["Subject"] = "Spring collection: new arrivals and 20% off"
    message["Date"] = "Tue, 04 Mar 2025 09:00:00 +0000"
    message["Message-ID"] = "<20250304090000.1@shop.example>"
    message["List-Unsubscribe"] = "<https://shop.example/u/t0ken>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Feedback-ID"] = "spring:newsletter:shop:esp"
    rows = "".join(
        f'    <tr>\n      <td class="product" style="padding: 8px; font-family: Arial">\n'
        f'        <a href="https://shop.example/p/{n:05d}?utm_source=news">Item {n} in'
        f" blue, green and red</a>\n      </td>\n      <td>{n % 90 + 9}.99 EUR</td>\n"
        "    </tr>\n"
        for n in range(items)
    )
    text = "".join(f"Item {n} in blue, green and red: {n % 90 + 9}.99 EUR\n" for n in range(items))
    message.set_content(text + "\nUnsubscribe: https://shop.example/u/t0ken\n")
    message.add_alternative(
        f"<html>\n  <body>\n  <table>\n{rows}  </table>\n"
        '  <p><a href="https://shop.example/u/t0ken">Unsubscribe</a></p>\n  </body>\n</html>\n',
        subtype="html",
        cte="quoted-printable",
    )
    return message.as_bytes()


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second of CPU time of this process (one core) over about SECONDS."""
    for _ in range(WARMUP):
        operation()
    count = 0
    started = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            operation()
        count += 10
    return count / (time.process_time() - started)


def openssl_speed(seconds: int) -> float | None:
    """rsa2048 sign/s from `openssl speed -seconds N rsa2048` (one process, one core)."""
    try:
        completed = subprocess.run(
            ["openssl", "speed", "-seconds", str(seconds), "rsa2048"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60 + 4 * seconds,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"openssl speed: {exc}", file=sys.stderr)
        return None
    match = re.search(
        r"^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+[\d.]+\s*$", completed.stdout, re.M
    )
    return float(match.group(1)) if match else None


def keyrings(directory: Path) -> dict[str, KeyRing]:
    made = {
        "rsa-sha256": generate(DOMAIN, "rsa2025", directory),
        "ed25519-sha256": generate(DOMAIN, "ed2025", directory, "ed25519-sha256"),
    }

    def ring(*algorithms: str) -> KeyRing:
        entries = [
            DkimKey(
                domain=DOMAIN,
                selector=made[a].txt_record_name.split(".", 1)[0],
                private_key=made[a].private_key_path,
                algorithm=a,
            )
            for a in algorithms
        ]
        return load_keys(DkimSettings(keys=entries), "bench")

    return {
        "rsa": ring("rsa-sha256"),
        "ed25519": ring("ed25519-sha256"),
        "rsa+ed25519": ring("rsa-sha256", "ed25519-sha256"),
    }


def dkimpy_pure(pem: bytes, message: bytes, include: list[bytes]) -> bytes:
    """dkimpy alone: its parsing, canonicalisation and pure-Python RSA."""
    signature = dkim.DKIM(message).sign(
        b"rsa2025", DOMAIN.encode(), pem, canonicalize=(b"relaxed", b"relaxed"),
        include_headers=include,
    )  # fmt: skip
    return bytes(signature) + message


def dkimpy_canonicalisation(key: SigningKey, message: bytes) -> bytes:
    """The first plan: dkimpy parses and canonicalises the whole message, only the RSA operation
    goes through cryptography (relay's seam, _signature_field)."""
    headers, body = dkim.rfc822_parse(message)
    body_hash = base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest())
    include = header_list(name.lower() for name, _ in headers)
    timestamp = str(int(time.time())).encode()
    return _signature_field(key, headers, include, body_hash, timestamp, b"\r\n") + message


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure (default 3)")
    parser.add_argument(
        "--sizes",
        default="10240,102400",
        help="message sizes in bytes, comma-separated (default 10240,102400)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    figures: dict[str, float | int | bool | None] = {}

    def show(name: str, value: float | None, unit: str = "signatures/s") -> None:
        figures[re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")] = (
            None if value is None else round(value, 1)
        )
        shown = "n/a" if value is None else f"{value:,.0f} {unit}"
        print(f"{name + ':':<42} {shown}", flush=True)

    openssl = openssl_speed(max(1, round(args.seconds)))
    show("openssl speed rsa2048 sign/s", openssl)
    with tempfile.TemporaryDirectory(prefix="relay-bench-signing-") as directory:
        rings = keyrings(Path(directory))
        (rsa_key,) = rings["rsa"].for_domain(DOMAIN)
        digest = hashlib.sha256(b"bench").digest()
        show(
            "cryptography RSA-2048 key operation",
            rate(lambda: rsa_key.sign_digest(digest), args.seconds),
        )
        pem = rsa_key.path.read_bytes() if rsa_key.path else b""
        for size in sizes:
            message = message_of_size(size)
            label = f"{size / 1024:.0f}KB"
            figures[f"bytes_{label.lower()}"] = len(message)
            for name, ring in rings.items():
                signer = Signer(ring)
                assert signer.sign(message).signed
                show(
                    f"relay {name} {label}",
                    rate(lambda s=signer, m=message: s.sign(m), args.seconds),
                )
            include = list(header_list(name.lower() for name, _ in dkim.rfc822_parse(message)[0]))
            show(
                f"dkimpy canonicalisation + cryptography rsa {label}",
                rate(lambda m=message: dkimpy_canonicalisation(rsa_key, m), args.seconds),
            )
            show(
                f"dkimpy pure-Python rsa {label}",
                rate(lambda m=message, i=include: dkimpy_pure(pem, m, i), args.seconds),
            )
    first = figures.get(f"relay_rsa_{sizes[0] / 1024:.0f}kb")
    if openssl and first:
        ratio = float(first) / openssl
        figures["relay_rsa_vs_openssl"] = round(ratio, 3)
        figures["target_met"] = ratio >= TARGET_RATIO
        print(
            f"{'relay rsa / openssl (target >= 0.5):':<42} {ratio:.2f}"
            f" ({'met' if ratio >= TARGET_RATIO else 'missed'})"
        )
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
