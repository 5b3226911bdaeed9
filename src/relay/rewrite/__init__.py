"""The rewrite stage: the fixes a policy may order instead of a refusal (COMPLIANCE §0 `fix`).

Each fix is a pure function over the raw message (CRLF line endings, as ingest accepted it):

    fix(message: bytes, ...) -> tuple[bytes, list[Change]] | Unfixable

It changes the header section and only the body parts it must; every other byte stays as it was,
so a part the fix does not touch (an attachment, a signed part) is byte-identical afterwards. A
fix that has nothing to do returns the message unchanged and no changes: applying a fix twice
changes nothing the second time. Each `Change` is what the audit log records for the rule that
ordered the fix (old -> new value). A fix that cannot be made safely returns `Unfixable`, and the
pipeline refuses the message with the rule's reply instead.

Fixes run before DKIM signing, and only when the relay holds an aligned key for the From domain
(COMPLIANCE §11 point 10); which fixes a sender allows is decided in `relay.rewrite.plan`.

    required_headers  missing Date / Message-ID (RFC-5322-REQUIRED)
    unsubscribe       List-Unsubscribe + List-Unsubscribe-Post, HMAC tokens (RFC 8058, RFC 2369)
    subject_prefix    广告 / AD Subject prefix, RFC 2047 aware (PRC-SUBJECT-AD-PREFIX)
    footer            identity and unsubscribe footer in text/plain and text/html parts
    long_lines        body lines over 998 octets re-encoded quoted-printable (RFC-5322-LINELEN)
    verp              per-recipient VERP return path and its parser (feedback stage)
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.audit.records import AuditEvent

__all__ = ["Change", "Rewrite", "Unfixable"]


@dataclass(frozen=True, slots=True)
class Change:
    """One field changed by a fix: `field` is a header name, `MAIL FROM`, or a body part
    (`body 1.2 text/html`); `old` is None when the field was absent, `new` None when removed.
    Header values are unfolded; the Subject is given decoded (what a reader sees)."""

    rule_id: str
    field: str
    old: str | None
    new: str | None

    def audit(self, event: AuditEvent) -> AuditEvent:
        """`event` (time, stage, message and recipient filled in) as the record of this change."""
        return event.updated(
            action="fix",
            rule_id=self.rule_id,
            detail=f"{self.field}: {self.old!r} -> {self.new!r}",
            inputs={"field": self.field, "old": self.old, "new": self.new},
        )


@dataclass(frozen=True, slots=True)
class Unfixable:
    """The fix cannot be made without risking the message (a header line too long, a part in an
    unknown charset or transfer encoding, MIME structure relay cannot locate safely): refuse
    with the rule's reply."""

    rule_id: str
    detail: str


Rewrite = tuple[bytes, list[Change]]
