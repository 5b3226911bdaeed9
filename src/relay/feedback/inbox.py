"""The feedback listener's inbox: a message answered 250 is a file here first, and stays until
what it says is recorded (DESIGN §3, as for the spool).

Layout under state_dir/feedback:

    tmp/<id>        being written; never answered 250; removed at start-up
    new/<id>        received and answered 250; removed once processed
    unparsed/<id>   could not be turned into suppressions; kept for an operator

A file is one line of JSON (the envelope: mail_from, recipients, received_at, client), then the
message exactly as received.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from relay.durable import write_durably
from relay.errors import SpoolError
from relay.spool.store import new_queue_id

__all__ = ["Inbox", "InboxEnvelope"]


@dataclass(frozen=True, slots=True)
class InboxEnvelope:
    """The SMTP envelope of a message the feedback listener accepted."""

    mail_from: str  # "" is the null reverse path, the usual sender of a bounce
    recipients: tuple[str, ...]
    received_at: float
    client: str  # the client's IP address

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> InboxEnvelope:
        fields = json.loads(data)
        fields["recipients"] = tuple(fields["recipients"])
        return cls(**fields)


class Inbox:
    """Message files under `path`; the blocking file work runs in worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp_dir = path / "tmp"
        self.new_dir = path / "new"
        self.unparsed_dir = path / "unparsed"

    async def open(self) -> list[str]:
        """Create the directories, drop half-written files; return the names of the messages
        received but not yet processed (left by a crash or a stop), oldest first."""
        try:
            return await asyncio.to_thread(self._open)
        except OSError as exc:
            raise SpoolError(f"cannot open the feedback inbox at {self.path}: {exc}") from exc

    def _open(self) -> list[str]:
        for directory in (self.tmp_dir, self.new_dir, self.unparsed_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink()
        return sorted(entry.name for entry in self.new_dir.iterdir())

    async def store(self, envelope: InboxEnvelope, content: bytes) -> str:
        """Write the message durably; when this returns, a 250 may be sent. Its name."""
        name = new_queue_id()
        try:
            await asyncio.to_thread(
                write_durably,
                self.tmp_dir / name,
                self.new_dir / name,
                (envelope.to_json() + b"\n", content),
            )
        except OSError as exc:
            raise SpoolError(f"{name}: cannot write to the feedback inbox: {exc}") from exc
        return name

    async def load(self, name: str) -> tuple[InboxEnvelope, bytes]:
        try:
            data = await asyncio.to_thread((self.new_dir / name).read_bytes)
        except OSError as exc:
            raise SpoolError(f"{name}: cannot read the feedback inbox file: {exc}") from exc
        header, _, content = data.partition(b"\n")
        try:
            return InboxEnvelope.from_json(header), content
        except (ValueError, TypeError, KeyError) as exc:
            raise SpoolError(f"{name}: unreadable envelope: {exc}") from exc

    async def remove(self, name: str) -> None:
        """Forget a processed message."""
        await asyncio.to_thread((self.new_dir / name).unlink, missing_ok=True)

    async def set_aside(self, name: str) -> Path:
        """Move a message that could not be processed to unparsed/; where it now is."""
        target = self.unparsed_dir / name
        await asyncio.to_thread(os.replace, self.new_dir / name, target)
        return target
