"""Throughput benchmark: C client connections submit N messages to relay, which delivers them
to a counting aiosmtpd sink; report accepted/s, delivered/s, time-to-250 and relay's peak RSS.

By default the script starts everything itself on loopback: the sink in a separate process (so
that it does not compete with the client for the GIL), NSD (the test suite's DNS fixture)
publishing bench.test's SPF, DMARC and DKIM key records so that the shipped DNS rules pass, and
relay as `python -m relay serve` with a generated configuration and a fresh RSA-2048 key in a
temporary directory: every message is checked, DKIM-signed, audited and spooled. With --relay
HOST:PORT it uses a relay that is already running; that relay must route `bench.test` to
127.0.0.1:--sink-port.

    .venv/bin/python bench/throughput.py --messages 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import psutil
from aiosmtpd.smtp import SMTP

from relay.signing.keys import GeneratedKey, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's DNS fixture
from tests.support.dns_server import DnsServer, txt
from tests.support.network import free_port
from tests.support.polling import poll

DOMAIN = "bench.test"
SENDER = f"bench-sender@{DOMAIN}"
LOOPBACK = "127.0.0.1"
COMMAND_TIMEOUT = 120.0
RSS_INTERVAL = 0.05
MIB = 1024 * 1024


# -- sink (runs in its own process) ---------------------------------------------------------


class CountingHandler:
    """aiosmtpd handler that only counts: messages from the benchmark sender, and DSNs (null
    sender) separately, with the monotonic time of the first and last arrival; and among the
    messages, those whose header carries a DKIM-Signature field."""

    def __init__(self, counters: SinkCounters) -> None:
        self._counters = counters

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        counters = self._counters
        if not envelope.mail_from or envelope.mail_from == "<>":
            counters.dsns.value += 1
        else:
            if counters.delivered.value == 0:
                counters.first_arrival.value = now
            counters.delivered.value += 1
            counters.last_arrival.value = now
            if has_dkim_signature(envelope.content):
                counters.signed.value += 1
        return "250 2.0.0 OK: counted by sink"


def has_dkim_signature(content: bytes | str | None) -> bool:
    """Whether the header of a message (up to the first empty line) has a DKIM-Signature."""
    if not content:
        return False
    data = content.encode("utf-8", "replace") if isinstance(content, str) else content
    end = data.find(b"\r\n\r\n")
    header = b"\r\n" + (data if end < 0 else data[:end]).lower()
    return b"\ndkim-signature:" in header


@dataclass
class SinkCounters:
    """Shared memory written by the sink process (the only writer while mail arrives), read by
    the benchmark; `reset` by the benchmark between runs, when nothing is arriving."""

    port: Any
    delivered: Any
    dsns: Any
    first_arrival: Any
    last_arrival: Any
    signed: Any

    @classmethod
    def create(cls, context: Any) -> SinkCounters:
        return cls(
            port=context.RawValue("i", 0),
            delivered=context.RawValue("q", 0),
            dsns=context.RawValue("q", 0),
            first_arrival=context.RawValue("d", 0.0),
            last_arrival=context.RawValue("d", 0.0),
            signed=context.RawValue("q", 0),
        )

    def reset(self) -> None:
        self.delivered.value = 0
        self.dsns.value = 0
        self.first_arrival.value = 0.0
        self.last_arrival.value = 0.0
        self.signed.value = 0


def sink_main(port: int, counters: SinkCounters, ready: Any, stop: Any) -> None:
    """Entry point of the sink process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    asyncio.run(_sink_serve(port, counters, ready, stop))


async def _sink_serve(port: int, counters: SinkCounters, ready: Any, stop: Any) -> None:
    handler = CountingHandler(counters)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.bench.test", ident="bench sink"),
        host=LOOPBACK,
        port=port,
    )
    counters.port.value = server.sockets[0].getsockname()[1]
    ready.set()
    await loop.run_in_executor(None, stop.wait)
    server.close()


class Sink:
    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.counters = SinkCounters.create(context)
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=sink_main,
            args=(port, self.counters, self._ready, self._stop),
            name="bench-sink",
            daemon=True,
        )

    def start(self) -> Sink:
        self._process.start()
        if not self._ready.wait(30):
            self.stop()
            raise RuntimeError("the sink did not start (is the port free?)")
        return self

    @property
    def port(self) -> int:
        return int(self.counters.port.value)

    @property
    def delivered(self) -> int:
        return int(self.counters.delivered.value)

    @property
    def signed(self) -> int:
        """Messages that arrived with a DKIM-Signature header field."""
        return int(self.counters.signed.value)

    def reset(self) -> None:
        """Zero the counters for the next run; call it only when no message is arriving."""
        self.counters.reset()

    def stop(self) -> None:
        self._stop.set()
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


# -- relay under test -----------------------------------------------------------------------


def wait_until_listening(
    port: int, alive: Callable[[], bool], what: str, timeout: float = 30.0
) -> None:
    """Return once a server started as a child process accepts connections on the loopback
    `port`; raise RuntimeError as soon as it exits, or after `timeout` seconds."""

    def ready() -> bool | None:
        if not alive():
            raise RuntimeError(f"{what} exited at start-up")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        except OSError:
            return None

    if poll(ready, timeout) is None:
        raise RuntimeError(f"{what} did not listen on {LOOPBACK}:{port}")


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable text is a TOML basic string


class ChildProcess:
    """A server the benchmark started as a child process."""

    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class RelayProcess(ChildProcess):
    """relay started as an operator would: `python -m relay serve --config FILE`. Its SMTP,
    feedback and HTTP listeners get free loopback ports; `route` is the recipient domain (or
    "*") routed to the sink; `extra_config` is appended to the generated TOML (more sections);
    `port` and `reuse_port` let several nodes share one submission port."""

    def __init__(
        self,
        directory: Path,
        sink_port: int,
        max_message_size: int,
        dns_address: str,
        key: GeneratedKey,
        *,
        route: str = DOMAIN,
        extra_config: str = "",
        port: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.directory = directory
        self.port = free_port() if port is None else port
        self.config_path = directory / "relay.toml"
        self.log_path = directory / "relay.log"
        self.config = "\n".join(
            [
                f"state_dir = {toml_string(str(directory / 'var'))}",
                "",
                "[smtp]",
                f'listen = "{LOOPBACK}:{self.port}"',
                'hostname = "relay.bench.test"',
                f"max_message_size = {max_message_size}",
                f"reuse_port = {'true' if reuse_port else 'false'}",
                "",
                "[feedback]",
                f'listen = "{LOOPBACK}:{free_port()}"',
                "",
                "[http]",
                f'listen = "{LOOPBACK}:{free_port()}"',
                "",
                "[dns]",
                f'nameservers = ["{dns_address}"]',
                "",
                "[delivery]",
                'helo_name = "relay.bench.test"',
                f"routes = {{ {toml_string(route)} = {toml_string(f'[{LOOPBACK}]:{sink_port}')} }}",
                f'egress_addresses = ["{LOOPBACK}"]',
                "",
                "[[dkim.keys]]",
                f'domain = "{DOMAIN}"',
                'selector = "bench"',
                f"private_key = {toml_string(str(key.private_key_path))}",
                "",
                extra_config,
            ]
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        self.config_path.write_text(self.config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "relay",
                    "serve",
                    "--config",
                    str(self.config_path),
                    "--log-level",
                    "warning",
                ],
                cwd=self.directory,
                stdout=log,
                stderr=log,
                env=env,
            )
        try:
            wait_until_listening(self.port, self.alive, "relay")
        except RuntimeError:
            self.stop()
            raise
        return self

    def log(self, tail: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class RssPoller:
    """Peak resident set size (the sum over the processes) and CPU time of one or more process
    trees: each root pid and all its descendants, polled every `interval` seconds (50 ms).

    CPU time is that of the whole trees: per live process its own user + system time plus that
    of its children it has reaped (children_user, children_system), so that work done by
    processes that exited during the run (a Postfix smtpd past max_idle) still counts.
    `peak_private` is the peak of the sum of RSS minus shared (file-backed and shm) pages: the
    RSS sum counts a library mapped by many processes once per process."""

    def __init__(self, pid: int, *more_pids: int, interval: float = RSS_INTERVAL) -> None:
        self._roots = [psutil.Process(root) for root in (pid, *more_pids)]
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-poller", daemon=True)
        self.peak = 0
        self.first = 0
        self.peak_private = 0
        self.cpu_first: float | None = None
        self.cpu_last: float | None = None

    def _processes(self) -> list[psutil.Process]:
        processes: list[psutil.Process] = []
        for root in self._roots:
            with contextlib.suppress(psutil.Error):
                processes.extend([root, *root.children(recursive=True)])
        return processes

    def _measure(self) -> tuple[int, int, float | None]:
        """(RSS, private RSS, CPU seconds) of the trees; CPU None once every root is gone."""
        rss = private = 0
        cpu: float | None = None
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                with process.oneshot():
                    times = process.cpu_times()
                    memory = process.memory_info()
                rss += memory.rss
                private += max(0, memory.rss - memory.shared)
                used = times.user + times.system + times.children_user + times.children_system
                cpu = (cpu or 0.0) + used
        return rss, private, cpu

    def sample(self) -> int:
        return self._measure()[0]

    def _poll(self) -> None:
        rss, private, cpu = self._measure()
        self.peak = max(self.peak, rss)
        self.peak_private = max(self.peak_private, private)
        if cpu is not None:
            # A process reaped between listing and reading is briefly missed: never go back.
            self.cpu_last = cpu if self.cpu_last is None else max(self.cpu_last, cpu)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._poll()

    @property
    def cpu_used(self) -> float | None:
        if self.cpu_first is None or self.cpu_last is None:
            return None
        return self.cpu_last - self.cpu_first

    def start(self) -> RssPoller:
        self.first, self.peak_private, self.cpu_first = self._measure()
        self.peak = self.first
        self.cpu_last = self.cpu_first
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()


# -- clients --------------------------------------------------------------------------------


def build_body(size: int, headers: str | None = None, text: str = "") -> bytes:
    """Headers (all but Message-ID, which varies) and a plain-text body, about `size` bytes in
    all; no line starts with a dot, so nothing needs dot-stuffing. By default declared
    transactional, so that it passes the shipped policies: every message still goes through the
    policy stage and the audit log. `headers` replaces the default header lines (CRLF-terminated,
    without the empty line that ends them); `text` (CRLF lines) starts the body, before the
    padding lines."""
    if headers is None:
        headers = (
            "X-Relay-Message-Class: transactional\r\n"
            f"From: Bench <{SENDER}>\r\n"
            f"To: Bench recipient <rcpt@{DOMAIN}>\r\n"
            f"Subject: relay throughput benchmark\r\n"
            f"Date: {formatdate(localtime=True)}\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
        )
    head = (headers + "\r\n" + text).encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrst\r\n"
    remaining = max(size - len(head) - 36, len(line))  # 36: the Message-ID line
    tail = remaining % len(line)
    body = line * (remaining // len(line)) + (line[: tail - 2] + b"\r\n" if tail >= 2 else b"")
    return head + body


@dataclass
class ClientStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    accepted: int = 0
    first_mail: float = float("inf")
    last_250: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(text)


async def connect(host: str, port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        local_hostname="client.bench.test",
        timeout=COMMAND_TIMEOUT,
        start_tls=False,
    )
    await client.connect()
    await client.ehlo()
    return client


class StartGate:
    """Clients connect and EHLO first; the clock starts when all of them are ready."""

    def __init__(self, clients: int) -> None:
        self.waiting_for = clients
        self.go = asyncio.Event()

    def leave(self) -> None:
        """A client is ready, or could not connect at all."""
        self.waiting_for -= 1
        if self.waiting_for <= 0:
            self.go.set()

    async def arrive(self) -> None:
        self.leave()
        await self.go.wait()


def default_recipient(number: int) -> str:
    return f"rcpt-{number}@{DOMAIN}"


async def run_client(
    host: str,
    port: int,
    numbers: range,
    body: bytes,
    gate: StartGate,
    stats: ClientStats,
    recipient: Callable[[int], str] = default_recipient,
) -> None:
    """One persistent connection, one transaction per message (RCPT TO `recipient(number)`)."""
    try:
        client: aiosmtplib.SMTP | None = await connect(host, port)
    except BaseException:
        gate.leave()
        raise
    await gate.arrive()
    clock = time.monotonic
    for number in numbers:
        if client is None:
            try:
                client = await connect(host, port)
            except (aiosmtplib.SMTPException, OSError) as exc:
                stats.error(f"reconnect: {exc!r}")
                continue
        message = b"Message-ID: <%d.bench@bench.test>\r\n" % number + body
        started = clock()
        stats.first_mail = min(stats.first_mail, started)
        try:
            await client.mail(SENDER)
            await client.rcpt(recipient(number))
            response = await client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            stats.error(f"{exc.code} {exc.message}")
            if exc.code == 421:
                client.close()
                client = None
                continue
            try:
                await client.rset()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
                client = None
            continue
        except (aiosmtplib.SMTPException, OSError) as exc:
            stats.error(repr(exc))
            client.close()
            client = None
            continue
        finished = clock()
        if response.code != 250:
            stats.error(f"{response.code} {response.message}")
            continue
        stats.accepted += 1
        stats.latencies.append(finished - started)
        stats.last_250 = max(stats.last_250, finished)
    if client is not None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()


async def submit_all(
    host: str,
    port: int,
    messages: int,
    concurrency: int,
    body: bytes,
    *,
    first: int = 0,
    recipient: Callable[[int], str] = default_recipient,
) -> ClientStats:
    """Messages numbered first .. first + messages - 1 (the number is in the Message-ID and, by
    default, the recipient) over `concurrency` connections."""
    stats = ClientStats()
    gate = StartGate(concurrency)
    share, extra = divmod(messages, concurrency)
    tasks = []
    start = first
    for index in range(concurrency):
        count = share + (1 if index < extra else 0)
        numbers = range(start, start + count)
        start += count
        client = run_client(host, port, numbers, body, gate, stats, recipient)
        tasks.append(asyncio.create_task(client))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            # The connection could not even be opened: all of its messages failed.
            stats.error(f"client: {result!r}")
    missing = messages - stats.accepted - stats.errors
    if missing > 0:
        stats.errors += missing
    return stats


# -- the run --------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class Server(Protocol):
    """What wait_for_delivery watches: the server under test (relay, or another MTA)."""

    def alive(self) -> bool: ...


async def wait_for_delivery(
    sink: Sink, expected: int, deadline: float, relay: Server | None
) -> bool:
    while sink.delivered < expected:
        if time.monotonic() > deadline:
            return False
        if relay is not None and not relay.alive():
            return False
        await asyncio.sleep(0.02)
    return True


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not address.is_loopback:
        raise argparse.ArgumentTypeError(f"{text!r}: the benchmark only uses loopback")
    return str(address), int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages to send")
    parser.add_argument("--size", type=int, default=10240, help="approximate message size")
    parser.add_argument("--concurrency", type=int, default=20, help="client connections")
    parser.add_argument(
        "--relay",
        type=parse_host_port,
        metavar="HOST:PORT",
        help="use this running relay (it must route bench.test to 127.0.0.1:--sink-port)",
    )
    parser.add_argument("--sink-port", type=int, help="sink port (required with --relay)")
    parser.add_argument("--relay-pid", type=int, help="pid of the external relay, for its RSS")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.size < 256:
        parser.error("--messages and --concurrency must be >= 1, --size >= 256")
    if args.relay is not None and args.sink_port is None:
        parser.error("--relay needs --sink-port (the port its bench.test route points to)")
    if args.relay is None and args.relay_pid is not None:
        parser.error("--relay-pid only applies with --relay")
    args.concurrency = min(args.concurrency, args.messages)
    return args


def report(figures: dict[str, Any]) -> None:
    def show(value: Any, unit: str = "") -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:,.1f}{unit}"
        return f"{value}{unit}"

    print(f"messages:          {show(figures['messages'])}")
    print(f"size:              {show(figures['size'], ' bytes')}")
    print(f"concurrency:       {show(figures['concurrency'])}")
    print(f"accepted/s:        {show(figures['accepted_per_s'])}")
    print(f"delivered/s:       {show(figures['delivered_per_s'])}")
    print(f"p50 time-to-250:   {show(figures['p50_ms'], ' ms')}")
    print(f"p99 time-to-250:   {show(figures['p99_ms'], ' ms')}")
    print(f"relay peak RSS:    {show(figures['relay_peak_rss_mib'], ' MiB')}")
    print(f"errors:            {show(figures['errors'])}")
    print(f"delivered:         {show(figures['delivered'])}")
    print(f"DSNs at sink:      {show(figures['dsns'])}")
    print(f"relay CPU:         {show(figures['relay_cpu_s'], ' s')}")
    print(f"client CPU:        {show(figures['client_cpu_s'], ' s')}")
    print(json.dumps(figures, separators=(",", ":")))


async def benchmark(args: argparse.Namespace, sink: Sink, relay: RelayProcess | None) -> int:
    host, port = args.relay if args.relay is not None else (LOOPBACK, relay.port if relay else 0)
    relay_pid = relay.pid if relay is not None else args.relay_pid
    poller = RssPoller(relay_pid).start() if relay_pid is not None else None
    body = build_body(args.size)
    size = len(body) + len(b"Message-ID: <%d.bench@bench.test>\r\n" % (args.messages - 1))
    client_cpu_before = time.process_time()
    run_started = time.monotonic()
    try:
        stats = await submit_all(host, port, args.messages, args.concurrency, body)
        client_cpu = time.process_time() - client_cpu_before
        deadline = run_started + 120 + args.messages / 50
        complete = await wait_for_delivery(sink, stats.accepted, deadline, relay)
    finally:
        if poller is not None:
            poller.stop()
    delivered = sink.delivered
    if not complete:
        alive = relay is None or relay.alive()
        why = "timed out" if alive else "relay exited"
        print(
            f"delivery incomplete ({why}): sink has {delivered} of {stats.accepted}",
            file=sys.stderr,
        )
    for sample in stats.error_samples:
        print(f"error: {sample}", file=sys.stderr)
    latencies = sorted(stats.latencies)
    accept_span = stats.last_250 - stats.first_mail if stats.accepted else 0.0
    deliver_span = sink.counters.last_arrival.value - stats.first_mail if delivered else 0.0
    relay_cpu = poller.cpu_used if poller is not None else None
    figures: dict[str, Any] = {
        "messages": args.messages,
        "size": size,
        "concurrency": args.concurrency,
        "accepted_per_s": round(stats.accepted / accept_span, 1) if accept_span > 0 else None,
        "delivered_per_s": round(delivered / deliver_span, 1) if deliver_span > 0 else None,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        "relay_peak_rss_mib": round(poller.peak / MIB, 1) if poller is not None else None,
        "errors": stats.errors,
        "delivered": delivered,
        "dsns": int(sink.counters.dsns.value),
        "relay_cpu_s": round(relay_cpu, 2) if relay_cpu is not None else None,
        "client_cpu_s": round(client_cpu, 2),
        "complete": complete,
    }
    report(figures)
    return 0 if complete and stats.errors == 0 else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.relay is not None:
        sink = Sink(args.sink_port).start()
        try:
            return asyncio.run(benchmark(args, sink, None))
        finally:
            sink.stop()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as temp:
        directory = Path(temp)
        dns = DnsServer(directory / "nsd", free_port())
        key = generate(DOMAIN, "bench", directory / "keys")
        sink = Sink(0).start()
        relay = RelayProcess(directory, sink.port, max(36_700_160, args.size * 4), dns.address, key)
        try:
            dns.start()
            dns.add(
                txt(DOMAIN, f"v=spf1 ip4:{LOOPBACK} -all"),
                txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject"),
                txt(key.txt_record_name, key.txt_record_value),
            )
            relay.start()
            return asyncio.run(benchmark(args, sink, relay))
        except RuntimeError as exc:
            print(f"benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            returncode = relay.stop()
            dns.stop()
            sink.stop()
            if returncode not in (0, None):
                print(f"relay exited with {returncode}", file=sys.stderr)
            log = relay.log()
            if log.strip():
                print(f"relay log (last lines):\n{log}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
