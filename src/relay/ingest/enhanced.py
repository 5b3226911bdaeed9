"""aiosmtpd's SMTP with an RFC 3463 enhanced status code on every reply (RFC 2034 §3), the base
of relay's listeners (submission, feedback)."""

from __future__ import annotations

from typing import AnyStr

from aiosmtpd.smtp import SMTP

from relay import replies

__all__ = ["EnhancedStatusSMTP"]


class EnhancedStatusSMTP(SMTP):
    """Adds the class's enhanced code to the replies aiosmtpd writes itself; replies to HELO and
    EHLO carry none (RFC 2034 §3)."""

    _answering_hello = False

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and not self._answering_hello:
            status = replies.with_enhanced_code(status)
        await super().push(status)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._answering_hello = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._answering_hello = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._answering_hello = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._answering_hello = False
