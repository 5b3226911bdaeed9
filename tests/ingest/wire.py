"""A raw SMTP client over a real socket, for tests that need exact bytes on the wire.

smtplib normalises and encodes what it sends; these tests send command lines and DATA bytes
exactly as written and read every reply line the server sends, so that an extra or missing reply
is visible.
"""

from __future__ import annotations

import re
import socket
import ssl

ENHANCED = re.compile(rb"^[245]\.\d{1,3}\.\d{1,3} ")


class Reply:
    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    @property
    def code(self) -> int:
        return int(self.lines[-1][:3])

    @property
    def text(self) -> bytes:
        """The text of the last line, after the code and separator."""
        return self.lines[-1][4:]

    @property
    def status(self) -> str | None:
        """The enhanced status code of the last line, if any."""
        match = ENHANCED.match(self.text)
        return match.group(0).decode().strip() if match else None

    def __repr__(self) -> str:
        return f"Reply({b' / '.join(self.lines)!r})"


def unverified_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Wire:
    """One connection; `reply()` reads one complete (possibly multi-line) reply."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            (host, port), timeout=timeout
        )
        self.buffer = b""

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self) -> Reply:
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return Reply(lines)

    def command(self, line: bytes | str) -> Reply:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def greeting_and_ehlo(self, name: str = "client.test") -> Reply:
        greeting = self.reply()
        assert greeting.code == 220, greeting
        ehlo = self.command(f"EHLO {name}")
        assert ehlo.code == 250, ehlo
        return ehlo

    def starttls(self, context: ssl.SSLContext | None = None) -> None:
        """Wrap the socket after a 220 to STARTTLS; nothing may be left unread."""
        assert self.buffer == b"", f"plaintext after the 220 to STARTTLS: {self.buffer!r}"
        self.sock = (context or unverified_tls()).wrap_socket(self.sock)
