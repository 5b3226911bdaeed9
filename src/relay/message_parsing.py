"""Parsing a message with the email package's modern API, once per stage, at a bearable cost.

`email.policy.default` builds a header object anew (a fresh class lookup and a full RFC 5322 or
MIME grammar parse) every time a header is read: `get_content_type()` alone parses Content-Type
again on each call, and the policy and rewrite stages read the same few fields many times per
message. Header objects are immutable and depend only on the field's name and value, so the
policy here remembers the parsed object of recently seen short fields; the common ones
(Content-Type, MIME-Version, a mailer's From) are then parsed once per process, not per read.
"""

from __future__ import annotations

import functools
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

__all__ = ["MESSAGE_POLICY", "parse_message"]

# Longer values are parsed on every read: a remembered object keeps its value alive, and memory
# must stay bounded whatever a client sends.
_REMEMBERED_LENGTH = 512
_REMEMBERED_FIELDS = 4096


class _RememberingPolicy(EmailPolicy):
    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name") or len(value) > _REMEMBERED_LENGTH:
            return super().header_fetch_parse(name, value)
        return _parsed_field(self, name, value)


@functools.lru_cache(maxsize=_REMEMBERED_FIELDS)
def _parsed_field(policy: EmailPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(policy, name, value)


MESSAGE_POLICY = _RememberingPolicy()


def parse_message(content: bytes, *, headers_only: bool = False) -> EmailMessage:
    """`content` as an EmailMessage of the modern API (headers parsed on demand)."""
    parsed = BytesParser(policy=MESSAGE_POLICY).parsebytes(content, headersonly=headers_only)
    assert isinstance(parsed, EmailMessage)
    return parsed
