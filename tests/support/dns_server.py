"""A real authoritative DNS server (NSD) on a loopback port, serving the zones `test.` and
`example.` (the sender domains of the stories, shop.example and the like).

Tests add records for names of their own (`add`), which reloads the zones (SIGHUP) and waits
until the server answers with the new serial. Any other name gets REFUSED: a temporary failure
for a resolver.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import dns.resolver

from relay.signing.keys import zone_file_strings
from tests.support.polling import poll

ZONES = ("test", "example")


class DnsServer:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.records: list[str] = []
        self.serial = 1
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        nsd = shutil.which("nsd") or "/usr/sbin/nsd"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_zone()
        config = self.directory / "nsd.conf"
        config.write_text(
            f"""server:
  ip-address: 127.0.0.1@{self.port}
  username: ""
  zonesdir: "{self.directory}"
  database: ""
  pidfile: "{self.directory}/nsd.pid"
  xfrdfile: "{self.directory}/xfrd.state"
  zonelistfile: "{self.directory}/zone.list"
  logfile: "{self.directory}/nsd.log"
  verbosity: 1
remote-control:
  control-enable: no
"""
            + "".join(f"zone:\n  name: {zone}\n  zonefile: {zone}.zone\n" for zone in ZONES)
        )
        self.process = subprocess.Popen(
            [nsd, "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_for_serial()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def add(self, *records: str) -> None:
        """Add zone-file lines such as 'shop.test. 60 IN MX 10 mx.shop.test.' and reload."""
        for record in records:
            _zone_of(record)
        self.records.extend(records)
        self.serial += 1
        self._write_zone()
        assert self.process is not None
        pid = int((self.directory / "nsd.pid").read_text().strip())
        os.kill(pid, signal.SIGHUP)
        self._wait_for_serial()

    def _write_zone(self) -> None:
        for zone in ZONES:
            lines = [
                f"$ORIGIN {zone}.",
                "$TTL 1",
                f"@ IN SOA ns.{zone}. hostmaster.{zone}. {self.serial} 3600 600 86400 1",
                f"@ IN NS ns.{zone}.",
                "ns IN A 127.0.0.1",
                *(record for record in self.records if _zone_of(record) == zone),
                "",
            ]
            (self.directory / f"{zone}.zone").write_text("\n".join(lines))

    def _wait_for_serial(self) -> None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 0.5

        def serving() -> bool | None:
            for zone in ZONES:
                try:
                    answer = resolver.resolve(f"{zone}.", "SOA")
                except dns.exception.DNSException:
                    return None
                if answer[0].serial != self.serial:
                    return None
            return True

        if poll(serving, 10) is None:
            raise RuntimeError(f"NSD did not serve serial {self.serial}; see {self.directory}")


def _zone_of(record: str) -> str:
    owner = record.split(maxsplit=1)[0].lower()
    for zone in ZONES:
        if owner == f"{zone}." or owner.endswith(f".{zone}."):
            return zone
    raise ValueError(f"{record!r}: the owner must be an absolute name in {', '.join(ZONES)}")


def txt(name: str, value: str) -> str:
    """A zone-file TXT line; long values split into <=255-character strings."""
    return f"{name}. IN TXT {' '.join(zone_file_strings(value))}"
