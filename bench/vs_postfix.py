"""relay against Postfix + OpenDKIM on this machine: the same load, the same sink, one run.

Everything runs on loopback in a temporary directory: NSD (the test suite's DNS fixture)
publishing bench.test's SPF, DMARC and DKIM key records; one counting sink (throughput.py's
`Sink`, its own process) that both servers deliver to; relay (`python -m relay serve`, the
shipped policies, every domain routed to the sink, a fresh RSA-2048 key for bench.test), one
node per CPU as the README sets a host up (`--relay-nodes`: the nodes share the submission port
with [smtp] reuse_port and the first node's stores file; each has its own spool and audit
chain); and a
private Postfix instance (its own config, queue and data directories, `postfix -c DIR start`)
relaying everything to the sink through OpenDKIM as its milter, signing with the same key
(relaxed/relaxed, rsa-sha256). Postfix keeps its default durability: the queue file is fsync'd
before the 250, as relay's spool file is.

The load is throughput.py's generator: C persistent connections, one transaction (MAIL, RCPT,
DATA) per message, the same bytes to both servers. Each message is commercial mail from
news@bench.test whose sender profile ("bench", fix_us) was imported with `relay senders
import`, to a recipient of its own cycling over bench-mail.us, bench-mail.de and bench-mail.cn
(US, EU and PRC rules), each with a consent record imported with `relay consent import`; it
has the sender's legal name, postal address, contact and privacy link but no List-Unsubscribe,
so relay fixes it (one-click List-Unsubscribe; 【广告】 Subject prefix for .cn), audits and
signs it. Postfix only adds its Received field and OpenDKIM's signature. A smoke run first
checks that both servers accept and deliver everything signed and that relay's audit log has
`fix` records and `accept` records with DKIM inputs.

Then, per size, rounds of relay then Postfix (A B A B ...), each run waiting until the sink has
every accepted message. Per run: accepted/s (250s / submission span), delivered/s (messages at
the sink / (last arrival - first MAIL)), p50/p99 time to 250, CPU seconds per 1,000 messages of
the server side's process trees (relay: every node and its children; Postfix: the master and all
its descendants, reaped ones included, plus opendkim) and their peak RSS summed over the
processes, polled every 0.2 s (Postfix's hundred-odd processes share their libraries, which the
sum counts once per process: "private" is the peak sum of RSS minus shared pages), and the load
generator's own CPU per 1,000 messages (to see that it is not the limit). Then a table per
size (means over rounds, and relay/Postfix), and as the last line
`vs_postfix: 10KB ratio=R1 100KB ratio=R2`, R = relay delivered/s / Postfix delivered/s.

Defaults: sizes 10240 and 102400, 2 rounds, 50 connections, 3,000 messages per run at sizes up
to 32 KiB and 1,000 above: about two minutes in all on two cores. Needs root (Postfix is
started as root, as in production) and installs postfix and opendkim with apt if missing.

    .venv/bin/python bench/vs_postfix.py
    .venv/bin/python bench/vs_postfix.py --relay-nodes 1        # relay as one process
    .venv/bin/python bench/vs_postfix.py --messages 500 --rounds 1
    .venv/bin/python bench/vs_postfix.py --sizes 51200 --concurrency 20

Exit status: 0 when every run had every message accepted, delivered and signed; 1 otherwise;
2 when something could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from statistics import mean
from types import FrameType
from typing import Any, Protocol

from relay.signing.keys import GeneratedKey, generate
from throughput import (
    DOMAIN,
    LOOPBACK,
    MIB,
    ChildProcess,
    RelayProcess,
    RssPoller,
    Sink,
    build_body,
    percentile,
    submit_all,
    toml_string,
    wait_for_delivery,
    wait_until_listening,
)

# isort: split
# The repository root, and so the test suite's DNS fixture, is on sys.path once throughput is.
from tests.support.dns_server import DnsServer, txt
from tests.support.network import free_port
from tests.support.polling import poll

POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
OPENDKIM = Path("/usr/sbin/opendkim")
SELECTOR = "bench"
POLL_INTERVAL = 0.2  # the RSS/CPU poller shares the load generator's process: keep it light
PAUSE_BETWEEN_RUNS = 2.0

# The sender profile and the message (tests/policy/builders.py's shop, renamed).
SENDER_ID = "bench"
LEGAL_NAME = "Bench Shop Ltd"
POSTAL_ADDRESS = "1 Bench Street, Springfield, IL 62701"
CONTACT = f"service@{DOMAIN}"
PRIVACY_URL = f"https://{DOMAIN}/privacy"
# Recipient domains by jurisdiction (policies/*.toml [match] tlds) and the consent tag.
RECIPIENT_DOMAINS = (("bench-mail.us", "US"), ("bench-mail.de", "EU"), ("bench-mail.cn", "CN"))
SMOKE_MESSAGES = 30


def recipient(number: int) -> str:
    """The recipient of message `number`: one of its own, jurisdictions in turn."""
    domain, _ = RECIPIENT_DOMAINS[number % len(RECIPIENT_DOMAINS)]
    return f"r{number}@{domain}"


def commercial_body(size: int) -> bytes:
    """The message but its Message-ID: commercial, the sender's identity and privacy link in
    the text, no List-Unsubscribe (relay adds one: a fix), padded to about `size` bytes."""
    headers = (
        f"From: Bench Shop <news@{DOMAIN}>\r\n"
        f"To: Bench Shop customers <customers@{DOMAIN}>\r\n"
        "Subject: This week at Bench Shop: 20% off\r\n"
        f"Date: {formatdate(localtime=True)}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
    )
    text = (
        "Our weekly offers are here: 20% off everything until Sunday.\r\n"
        "\r\n"
        f"{LEGAL_NAME}, {POSTAL_ADDRESS}\r\n"
        f"Contact: {CONTACT}\r\n"
        f"Privacy notice: {PRIVACY_URL}\r\n"
        "\r\n"
    )
    return build_body(size, headers, text)


def size_label(size: int) -> str:
    return f"{size // 1024}KB" if size % 1024 == 0 else f"{size}B"


# -- installation ---------------------------------------------------------------------------


def ensure_installed() -> None:
    """apt-get install postfix and opendkim if either binary is missing, without letting the
    package configure (and start) the system's Postfix."""
    if POSTFIX.exists() and OPENDKIM.exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing postfix and opendkim with apt-get", file=sys.stderr)
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        env=env,
        check=True,
    )
    subprocess.run(["apt-get", "update"], env=env, check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "postfix", "opendkim"],
        env=env,
        check=True,
    )
    if not (POSTFIX.exists() and OPENDKIM.exists()):
        raise RuntimeError(f"{POSTFIX} or {OPENDKIM} still missing after apt-get install")


# -- the servers ----------------------------------------------------------------------------


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class OpenDkim(ChildProcess):
    """`opendkim -f -x CONF`, a child process, signing for bench.test with relay's key."""

    def __init__(self, directory: Path, key: GeneratedKey) -> None:
        self.directory = directory
        self.port = free_port()
        self.config_path = directory / "opendkim.conf"
        self.log_path = directory / "opendkim.log"
        self.key_path = directory / "keys" / f"{SELECTOR}.private"
        self._source_key = key.private_key_path
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        return "\n".join(
            [
                "Syslog no",
                "Background no",
                "AutoRestart no",
                "UserID opendkim:opendkim",
                "UMask 007",
                f"PidFile {self.directory / 'opendkim.pid'}",
                f"Socket inet:{self.port}@{LOOPBACK}",
                "Mode s",
                f"Domain {DOMAIN}",
                f"Selector {SELECTOR}",
                f"KeyFile {self.key_path}",
                # The key is a 0600 copy owned by opendkim in a 0700 directory, but the check
                # also refuses any world-writable ancestor, and the temporary directory is
                # under /tmp.
                "RequireSafeKeys false",
                "Canonicalization relaxed/relaxed",
                "SignatureAlgorithm rsa-sha256",
                f"InternalHosts {LOOPBACK}",
                "",
            ]
        )

    def start(self) -> OpenDkim:
        # The same private key relay signs with: a copy owned by opendkim, mode 0600, in a
        # directory only root and opendkim can enter.
        self.key_path.parent.mkdir(parents=True)
        shutil.copyfile(self._source_key, self.key_path)
        shutil.chown(self.key_path, "opendkim", "opendkim")
        self.key_path.chmod(0o600)
        shutil.chown(self.key_path.parent, "opendkim", "opendkim")
        self.key_path.parent.chmod(0o700)
        self.config_path.write_text(self.config())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(OPENDKIM), "-f", "-x", str(self.config_path)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        wait_until_listening(self.port, self.alive, "opendkim")
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PostfixInstance:
    """A private Postfix: config_directory, queue_directory and data_directory under
    `directory`, log in DIRECTORY/maillog (postlogd), smtpd on a free loopback port, relaying
    everything to [127.0.0.1]:sink_port with OpenDKIM as milter."""

    def __init__(
        self,
        directory: Path,
        sink_port: int,
        milter_port: int,
        max_message_size: int,
        concurrency: int,
    ) -> None:
        self.directory = directory
        self.config_dir = directory / "etc"
        self.queue_dir = directory / "spool"
        self.data_dir = directory / "lib"
        self.log_path = directory / "maillog"
        self.port = free_port()
        self.sink_port = sink_port
        self.milter_port = milter_port
        self.max_message_size = max_message_size
        # smtpd and cleanup processes, one each per client connection, and headroom.
        self.process_limit = max(200, 2 * concurrency + 50)
        self.started = False
        self.check_warnings = ""

    def main_cf(self) -> str:
        settings = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.directory),
            "myhostname": "postfix.bench.test",
            "mydomain": DOMAIN,
            "myorigin": "$mydomain",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relay_domains": "",
            "biff": "no",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_recipient_restrictions": "",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "relayhost": f"[{LOOPBACK}]:{self.sink_port}",
            "smtpd_milters": f"inet:{LOOPBACK}:{self.milter_port}",
            "non_smtpd_milters": "",
            "milter_default_action": "tempfail",
            "message_size_limit": str(self.max_message_size),
            "mailbox_size_limit": "0",
            "default_process_limit": str(self.process_limit),
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtpd_banner": "$myhostname ESMTP",
        }
        return "".join(f"{name} = {value}\n" for name, value in settings.items())

    def master_cf(self) -> str:
        # master.cf.proto's services, chroot off (column 5 `n`), smtpd on our loopback port.
        services = [
            (f"{LOOPBACK}:{self.port}", "inet", "n", "-", "n", "-", "-", "smtpd"),
            ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
            ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
            ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
            ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"),
            ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
            ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "n", "-", "-", "error"),
            ("retry", "unix", "-", "-", "n", "-", "-", "error"),
            ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
            ("local", "unix", "-", "n", "n", "-", "-", "local"),
            ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
            ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
            ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
        ]
        return "".join(
            " ".join(f"{field:<10}" for field in row).rstrip() + "\n" for row in services
        )

    def postfix(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(POSTFIX), "-c", str(self.config_dir), *command],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"postfix {' '.join(command)} exited with {result.returncode}:"
                f" {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def start(self) -> PostfixInstance:
        self.config_dir.mkdir(parents=True)
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(self.master_cf())
        # The queue directory is root's; `postfix check` (post-install create-missing) makes
        # the queue subdirectories and the data directory with Postfix's owners and modes.
        self.queue_dir.mkdir(mode=0o755)
        result = self.postfix("check")
        self.check_warnings = (result.stdout + result.stderr).strip()
        self.started = True
        if self.check_warnings:
            print(f"postfix check:\n{self.check_warnings}", file=sys.stderr)
        self.postfix("start")
        wait_until_listening(self.port, self.alive, "postfix")
        return self

    def master_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        return None

    def alive(self) -> bool:
        pid = self.master_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float) -> bool:
        """Whether the master process exits within `timeout` seconds."""
        return poll(lambda: None if self.alive() else True, timeout) is not None

    def log(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        if not self.alive():
            return
        self.postfix("stop", check=False)  # returns before the master has exited
        if self.wait_gone(20.0):
            return
        self.postfix("abort", check=False)
        if not self.wait_gone(5.0) and pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- the sides ------------------------------------------------------------------------------


class Side(Protocol):
    name: str

    @property
    def port(self) -> int: ...

    def pids(self) -> list[int]: ...

    def alive(self) -> bool: ...

    def log(self) -> str: ...


@dataclass
class RelaySide:
    nodes: list[RelayProcess]  # sharing one submission port and one stores file
    name: str = "relay"

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes]

    def alive(self) -> bool:
        return all(node.alive() for node in self.nodes)

    def log(self) -> str:
        return "\n".join(node.log(40) for node in self.nodes)


@dataclass
class PostfixSide:
    postfix: PostfixInstance
    opendkim: OpenDkim
    name: str = "postfix"

    @property
    def port(self) -> int:
        return self.postfix.port

    def pids(self) -> list[int]:
        master = self.postfix.master_pid()
        assert master is not None
        return [master, self.opendkim.pid]

    def alive(self) -> bool:
        return self.postfix.alive() and self.opendkim.alive()

    def log(self) -> str:
        return self.postfix.log(40) + "\n-- opendkim:\n" + tail(self.opendkim.log_path, 10)


# -- relay's stores, filled as an operator would --------------------------------------------


def relay_import(relay: RelayProcess, kind: str, rows: Iterator[dict[str, Any]]) -> None:
    """`python -m relay KIND import FILE --config CFG` of a JSON Lines file of `rows`."""
    path = relay.directory / f"{kind}.jsonl"
    with path.open("w") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "relay",
            kind,
            "import",
            str(path),
            "--config",
            str(relay.config_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"relay {kind} import failed: {result.stderr.strip()}")


def sender_rows() -> Iterator[dict[str, Any]]:
    yield {
        "sender_id": SENDER_ID,
        "legal_name": LEGAL_NAME,
        "postal_address": POSTAL_ADDRESS,
        "contact": CONTACT,
        "verified_domains": [DOMAIN],
        "default_jurisdiction": "US",
        "message_class": "commercial",
        "fix_us": True,
    }


def consent_rows(numbers: range) -> Iterator[dict[str, Any]]:
    for number in numbers:
        _, jurisdiction = RECIPIENT_DOMAINS[number % len(RECIPIENT_DOMAINS)]
        yield {
            "record_id": f"bench-{number}",
            "address": recipient(number),
            "sender_id": SENDER_ID,
            "scope": ["*"],
            "basis": "confirmed_optin",
            "jurisdictions": jurisdiction,
            "obtained_at": "2025-01-15T10:00:00+00:00",
            "source": "signup-form-7 203.0.113.9",
            "evidence_ref": f"evidence/bench-{number}.json",
            "notice_version": "privacy-2025-01",
            "affirmative_action": True,
            "bundled": False,
        }


def start_relay_nodes(
    directory: Path,
    count: int,
    sink_port: int,
    max_message_size: int,
    dns_address: str,
    key: GeneratedKey,
    stack: contextlib.ExitStack,
) -> list[RelayProcess]:
    """`count` relay nodes on one submission port ([smtp] reuse_port when more than one), each
    with its own spool and audit chain, all on the first node's stores file and keys."""
    nodes: list[RelayProcess] = []
    for number in range(count):
        node_directory = directory / ("relay" if number == 0 else f"relay-{number + 1}")
        node_directory.mkdir()
        shared = directory / "relay" / "var"
        config = [
            "[rewrite]",
            'unsubscribe_base_url = "https://unsubscribe.bench.test"',
            f'unsubscribe_mailto_domain = "{DOMAIN}"',
        ]
        if number:
            config += [
                f"token_key_file = {toml_string(str(shared / 'keys' / 'unsubscribe-token.key'))}",
                "",
                "[stores]",
                f"path = {toml_string(str(shared / 'stores.sqlite'))}",
                f"hmac_key_file = {toml_string(str(shared / 'keys' / 'address-hmac.key'))}",
            ]
        node = RelayProcess(
            node_directory,
            sink_port,
            max_message_size,
            dns_address,
            key,
            route="*",
            extra_config="\n".join([*config, ""]),
            port=nodes[0].port if nodes else None,
            reuse_port=count > 1,
        )
        stack.callback(node.stop)
        node.start()  # the first creates the shared keys and stores before the others start
        nodes.append(node)
    return nodes


def audit_summary(nodes: list[RelayProcess]) -> tuple[int, int]:
    """(fix records, accept records with DKIM inputs) in the relay nodes' audit logs."""
    fixes = signed_accepts = 0
    paths = [
        path for node in nodes for path in (node.directory / "var" / "audit").glob("audit-*.jsonl")
    ]
    for path in paths:
        for line in path.read_text().splitlines():
            if not line:
                continue
            record = json.loads(line)
            action = record.get("action")
            if action == "fix":
                fixes += 1
            elif action == "accept" and (record.get("inputs") or {}).get("dkim"):
                signed_accepts += 1
    return fixes, signed_accepts


# -- runs -----------------------------------------------------------------------------------


@dataclass
class Run:
    side: str
    size: int
    messages: int
    accepted_per_s: float
    delivered_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_per_1000: float
    peak_rss_mib: float
    peak_private_mib: float
    client_cpu_per_1000: float
    errors: int
    delivered: int
    signed: int
    dsns: int
    complete: bool
    error_samples: list[str]

    @property
    def ok(self) -> bool:
        return (
            self.complete
            and self.errors == 0
            and self.delivered == self.messages
            and self.signed == self.delivered
            and self.dsns == 0
        )

    def line(self, label: str) -> str:
        return (
            f"{self.side:<7} {label:<14} {self.messages} msgs"
            f"  accepted/s {self.accepted_per_s:8.1f}"
            f"  delivered/s {self.delivered_per_s:8.1f}"
            f"  p50 {self.p50_ms:7.1f} ms  p99 {self.p99_ms:7.1f} ms"
            f"  CPU {self.cpu_per_1000:6.2f} s/1000"
            f"  peak RSS {self.peak_rss_mib:7.1f} MiB (private {self.peak_private_mib:6.1f})"
            f"  client CPU {self.client_cpu_per_1000:5.2f} s/1000"
            f"  errors {self.errors}  delivered {self.delivered}  signed {self.signed}"
            f"  DSNs {self.dsns}"
        )


async def run_once(
    side: Side, sink: Sink, body: bytes, size: int, first: int, messages: int, concurrency: int
) -> Run:
    """`messages` messages numbered from `first` to `side`; waits until the sink has them."""
    sink.reset()
    poller = RssPoller(*side.pids(), interval=POLL_INTERVAL).start()
    client_cpu = time.process_time()
    try:
        stats = await submit_all(
            LOOPBACK,
            side.port,
            messages,
            min(concurrency, messages),
            body,
            first=first,
            recipient=recipient,
        )
        deadline = time.monotonic() + 120 + messages / 20
        complete = await wait_for_delivery(sink, stats.accepted, deadline, side)
    finally:
        poller.stop()
    client_cpu = time.process_time() - client_cpu
    delivered = sink.delivered
    latencies = sorted(stats.latencies)
    accept_span = stats.last_250 - stats.first_mail if stats.accepted else 0.0
    deliver_span = sink.counters.last_arrival.value - stats.first_mail if delivered else 0.0
    cpu = poller.cpu_used or 0.0
    return Run(
        side=side.name,
        size=size,
        messages=messages,
        accepted_per_s=stats.accepted / accept_span if accept_span > 0 else 0.0,
        delivered_per_s=delivered / deliver_span if deliver_span > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50) * 1000 if latencies else float("nan"),
        p99_ms=percentile(latencies, 0.99) * 1000 if latencies else float("nan"),
        cpu_per_1000=cpu * 1000 / messages,
        peak_rss_mib=poller.peak / MIB,
        peak_private_mib=poller.peak_private / MIB,
        client_cpu_per_1000=client_cpu * 1000 / messages,
        errors=stats.errors,
        delivered=delivered,
        signed=sink.signed,
        dsns=int(sink.counters.dsns.value),
        complete=complete,
        error_samples=stats.error_samples,
    )


FIGURES = (
    ("accepted/s", "accepted_per_s"),
    ("delivered/s", "delivered_per_s"),
    ("p50 time-to-250 ms", "p50_ms"),
    ("p99 time-to-250 ms", "p99_ms"),
    ("CPU s / 1000 msgs", "cpu_per_1000"),
    ("peak RSS MiB", "peak_rss_mib"),
    ("peak private MiB", "peak_private_mib"),
)


def summary(size: int, runs: list[Run], concurrency: int) -> float:
    """Print the table of one size; return relay delivered/s / Postfix delivered/s."""
    relay = [run for run in runs if run.side == "relay"]
    postfix = [run for run in runs if run.side == "postfix"]
    print()
    print(
        f"{size_label(size)} ({size} bytes): {relay[0].messages if relay else 0} messages"
        f" x {len(relay)} rounds per server, {concurrency} connections"
    )
    print(f"  {'figure':<20} {'relay':>10} {'postfix':>10} {'relay/postfix':>14}")
    ratio = float("nan")
    for title, attribute in FIGURES:
        ours = mean(getattr(run, attribute) for run in relay)
        theirs = mean(getattr(run, attribute) for run in postfix)
        quotient = ours / theirs if theirs else float("nan")
        if attribute == "delivered_per_s":
            ratio = quotient
        print(f"  {title:<20} {ours:>10.1f} {theirs:>10.1f} {quotient:>14.2f}")
    return ratio


async def smoke(relay: RelaySide, postfix: PostfixSide, sink: Sink, size: int, first: int) -> None:
    """A few messages through each: all accepted, delivered and signed; relay audited fixes."""
    body = commercial_body(size)
    for side in (relay, postfix):
        run = await run_once(side, sink, body, size, first, SMOKE_MESSAGES, 10)
        if not run.ok:
            for sample in run.error_samples:
                print(f"{side.name}: {sample}", file=sys.stderr)
            raise RuntimeError(f"smoke run through {side.name} failed: {run.line('smoke')}")
        await asyncio.sleep(PAUSE_BETWEEN_RUNS)
    fixes, signed_accepts = audit_summary(relay.nodes)
    if fixes == 0 or signed_accepts == 0:
        raise RuntimeError(
            f"relay's audit log has {fixes} fix records and {signed_accepts} accept records"
            " with DKIM inputs; the benchmark message does not exercise the whole pipeline"
        )
    print(
        f"smoke: {SMOKE_MESSAGES} messages each, all accepted, delivered and DKIM-signed;"
        f" relay audited {fixes} fixes, {signed_accepts} signed accepts"
    )


def plan(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(size, messages per run) for each size."""
    return [(size, args.messages or (3000 if size <= 32768 else 1000)) for size in args.sizes]


async def benchmark(
    args: argparse.Namespace, relay: RelaySide, postfix: PostfixSide, sink: Sink
) -> tuple[int, str]:
    """Smoke run, then the runs and tables; (exit status, the final ratio line)."""
    await smoke(relay, postfix, sink, args.sizes[0], 0)
    first = SMOKE_MESSAGES
    failed = False
    ratios: list[str] = []
    for size, messages in plan(args):
        body = commercial_body(size)
        runs: list[Run] = []
        for round_number in range(1, args.rounds + 1):
            for side in (relay, postfix):
                run = await run_once(side, sink, body, size, first, messages, args.concurrency)
                runs.append(run)
                print(run.line(f"{size_label(size)} round {round_number}"), flush=True)
                if not run.ok:
                    failed = True
                    for sample in run.error_samples:
                        print(f"{side.name}: error: {sample}", file=sys.stderr)
                    if not run.complete:
                        print(
                            f"{side.name}: delivery incomplete: sink has {run.delivered}"
                            f" of the accepted messages",
                            file=sys.stderr,
                        )
                await asyncio.sleep(PAUSE_BETWEEN_RUNS)
            first += messages  # the next round: new recipients (no cadence cap trips)
        ratio = summary(size, runs, args.concurrency)
        ratios.append(f"{size_label(size)} ratio={ratio:.2f}")
    return (1 if failed else 0), "vs_postfix: " + " ".join(ratios)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected sizes in bytes, e.g. 10240,102400"
        ) from None
    if not sizes or any(size < 1024 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be >= 1024")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[10240, 102400], help="message sizes in bytes"
    )
    parser.add_argument(
        "--messages",
        type=int,
        help="messages per run (default: 3000 at sizes up to 32 KiB, 1000 above)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of relay then Postfix")
    parser.add_argument("--concurrency", type=int, default=50, help="client connections")
    parser.add_argument(
        "--relay-nodes",
        type=int,
        default=os.cpu_count() or 1,
        help=(
            "relay nodes sharing the submission port ([smtp] reuse_port) and one stores file"
            " (default: one per CPU, as the README's one-node-per-core setup)"
        ),
    )
    args = parser.parse_args(argv)
    if (args.messages is not None and args.messages < 1) or args.rounds < 1:
        parser.error("--messages and --rounds must be >= 1")
    if args.concurrency < 1 or args.relay_nodes < 1:
        parser.error("--concurrency and --relay-nodes must be >= 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print(
            "vs_postfix: must run as root (it starts a private Postfix instance and may install"
            " postfix and opendkim with apt-get)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    try:
        ensure_installed()
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"vs_postfix: cannot install postfix and opendkim: {exc}", file=sys.stderr)
        return 2
    largest = max(args.sizes)
    max_message_size = max(36_700_160, largest * 4)
    total = SMOKE_MESSAGES + args.rounds * sum(messages for _, messages in plan(args))
    status = 2
    final_line = ""
    with (
        tempfile.TemporaryDirectory(prefix="relay-vs-postfix-") as temp,
        contextlib.ExitStack() as stack,
    ):
        directory = Path(temp)
        directory.chmod(0o755)  # Postfix's daemons run as postfix and must reach the queue
        relay_process: RelayProcess | None = None
        postfix_instance: PostfixInstance | None = None
        opendkim: OpenDkim | None = None
        try:
            dns = DnsServer(directory / "nsd", free_port())
            key = generate(DOMAIN, SELECTOR, directory / "keys")
            dns.start()
            stack.callback(dns.stop)
            dns.add(
                txt(DOMAIN, f"v=spf1 ip4:{LOOPBACK} -all"),
                txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject"),
                txt(key.txt_record_name, key.txt_record_value),
            )
            sink = Sink(0).start()
            stack.callback(sink.stop)

            nodes = start_relay_nodes(
                directory, args.relay_nodes, sink.port, max_message_size, dns.address, key, stack
            )
            relay_process = nodes[0]
            relay_import(relay_process, "senders", sender_rows())
            relay_import(relay_process, "consent", consent_rows(range(total)))

            (directory / "opendkim").mkdir()
            opendkim = OpenDkim(directory / "opendkim", key)
            stack.callback(opendkim.stop)
            opendkim.start()
            postfix_instance = PostfixInstance(
                directory / "postfix", sink.port, opendkim.port, max_message_size, args.concurrency
            )
            stack.callback(postfix_instance.stop)
            postfix_instance.start()

            print(
                f"relay ({len(nodes)} node(s)) on {LOOPBACK}:{relay_process.port}, postfix"
                f" {postfix_version()} on {LOOPBACK}:{postfix_instance.port} with opendkim on"
                f" {LOOPBACK}:{opendkim.port}, sink on {LOOPBACK}:{sink.port};"
                f" {total} consent records imported",
                flush=True,
            )
            status, final_line = asyncio.run(
                benchmark(
                    args,
                    RelaySide(nodes),
                    PostfixSide(postfix_instance, opendkim),
                    sink,
                )
            )
        except KeyboardInterrupt:
            print("vs_postfix: interrupted", file=sys.stderr)
            status = 130
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"vs_postfix: {exc}", file=sys.stderr)
            status = 2
        finally:
            if status not in (0, 130):
                if relay_process is not None:
                    print(f"relay log (last lines):\n{relay_process.log(40)}", file=sys.stderr)
                if opendkim is not None:
                    print(f"opendkim log:\n{tail(opendkim.log_path, 20)}", file=sys.stderr)
                if postfix_instance is not None:
                    print(
                        f"postfix maillog (last lines):\n{postfix_instance.log()}", file=sys.stderr
                    )
    print(f"\nwall time: {time.monotonic() - started:.0f} s")
    if final_line:
        print(final_line)  # the last line
    return status


def postfix_version() -> str:
    result = subprocess.run(
        [str(POSTCONF), "-dh", "mail_version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
