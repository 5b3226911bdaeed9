"""The async interface every store backend implements (SQLite now, Redis for several nodes).

Backends translate their own errors into StoreUnavailable at this boundary; the policy stage
answers 451 4.3.0 when a store cannot be asked (never fail open).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from relay.errors import StoreConflict
from relay.stores.hashing import AddressHasher
from relay.stores.models import (
    ApiToken,
    ConsentRecord,
    ErasureResult,
    PauseChange,
    SenderProfile,
    SoftBounce,
    SubjectRequest,
    SuppressionEntry,
    SuppressionKey,
    SuppressionQuery,
)
from relay.stores.stats import ListStats

__all__ = ["Stores", "refuse_repeated_ids", "refuse_stored_ids"]


def _some(values: Sequence[str], shown: int = 5) -> str:
    text = ", ".join(values[:shown])
    return text if len(values) <= shown else f"{text} and {len(values) - shown} more"


def refuse_repeated_ids(ids: Iterable[str]) -> None:
    """StoreConflict when a batch of consent records names a record id twice."""
    repeated = sorted(record_id for record_id, n in Counter(ids).items() if n > 1)
    if repeated:
        raise StoreConflict(f"consent record id(s) given twice: {_some(repeated)}")


def refuse_stored_ids(stored: Iterable[str]) -> None:
    """StoreConflict naming the consent record ids of a batch that are stored already."""
    present = sorted(stored)
    if present:
        raise StoreConflict(
            f"consent records are immutable; record id(s) already stored: {_some(present)}"
        )


class Stores(Protocol):
    @property
    def hasher(self) -> AddressHasher:
        """The keyed hash of addresses the stores are keyed by (the same on every node)."""
        ...

    @property
    def stats(self) -> ListStats:
        """The list-health figures, opened and closed with the stores."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- lookups at RCPT ---------------------------------------------------------------------

    async def suppression_for(
        self, address: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        """The entry that suppresses mail of `sender_id` (list `list_id`) to `address`, if any:
        a sender-wide entry, or a list entry for that list."""
        ...

    async def consents_for(self, address: str, sender_id: str) -> list[ConsentRecord]:
        """Every consent record of `sender_id` for `address`, newest first."""
        ...

    async def sender_for_user(self, user: str) -> SenderProfile | None: ...

    async def sender(self, sender_id: str) -> SenderProfile | None:
        """The profile of `sender_id`, if there is one."""
        ...

    async def senders(self) -> list[SenderProfile]:
        """Every sender profile, by id."""
        ...

    async def sender_for_domain(self, domain: str) -> SenderProfile | None:
        """The profile that has `domain` among its verified From domains."""
        ...

    async def sender_for_bounce_domain(self, domain: str) -> SenderProfile | None:
        """The profile whose VERP return paths are under `domain` (its bounce_domain)."""
        ...

    # -- writing (imports, feedback, admin API) -------------------------------------------------

    async def add_suppressions(self, entries: Iterable[SuppressionEntry]) -> int:
        """Add entries in one transaction (all or nothing; Redis: per 10,000 entries, adding
        again what is stored changes nothing); return how many were new."""
        ...

    async def add_consents(self, records: Iterable[ConsentRecord]) -> int:
        """Add records in one transaction (all or nothing; Redis: per 10,000 records, after
        checking every id); records are immutable: a record id already present is an error
        (StoreConflict)."""
        ...

    async def put_senders(self, profiles: Iterable[SenderProfile]) -> int:
        """Insert or replace sender profiles in one transaction."""
        ...

    async def add_soft_bounce(self, bounce: SoftBounce, since: datetime) -> int:
        """Keep `bounce`; return how many soft bounces of its recipient and sender are kept
        from `since` on, this one included."""
        ...

    # -- sender pauses (MBP-COMPLAINT-RATE; relay senders pause|resume) ------------------------

    async def pause_state(self, sender_id: str) -> PauseChange | None:
        """The latest pause or resume of `sender_id` (None: never paused): its commercial mail
        waits while that is a pause."""
        ...

    async def change_pause(self, change: PauseChange) -> PauseChange | None:
        """Journal `change` when it changes the sender's state (a pause of a sender not paused,
        a resume of a paused one); return it as stored, None when it changed nothing."""
        ...

    async def unrecorded_pause_changes(self) -> list[PauseChange]:
        """The journalled changes not yet in the audit log, oldest first."""
        ...

    async def pause_changes_recorded(self, audit_refs: Mapping[int, str]) -> None:
        """Mark changes (by seq) as written to the audit log under `audit_refs`."""
        ...

    # -- admin API tokens (relay tokens; relay.api.auth) ------------------------------------------

    async def add_api_token(self, token: ApiToken) -> None:
        """Store a new token; a token id or name already used is a StoreConflict."""
        ...

    async def api_token(self, secret_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `secret_hash`, revoked or not."""
        ...

    async def api_tokens(self) -> list[ApiToken]:
        """Every token, oldest first."""
        ...

    async def revoke_api_token(self, token_id: str, at: datetime) -> ApiToken | None:
        """Mark the token revoked (from `at` on); None when there is no such token. Revoking a
        revoked token changes nothing and returns it."""
        ...

    # -- admin API: suppressions -----------------------------------------------------------------

    async def suppressions_page(
        self, query: SuppressionQuery, after: SuppressionKey | None, limit: int
    ) -> list[SuppressionEntry]:
        """Up to `limit` entries matching `query`, in SuppressionKey order, after `after`
        (None: from the first). Each page is a seek, never a scan over earlier pages."""
        ...

    async def suppression_entry(
        self, address_hash: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        """The entry of exactly this recipient, sender and list (None: the sender-wide one)."""
        ...

    async def remove_suppression(
        self, address_hash: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        """Remove the entry of exactly this recipient, sender and list and return it; None when
        there is none. An erasure entry is never removed (StoreConflict): its keyed hash is what
        keeps an erased address suppressed."""
        ...

    # -- admin API: consent, erasure -------------------------------------------------------------

    async def consent_record(self, record_id: str) -> ConsentRecord | None: ...

    async def consents_page(
        self, address_hash: str | None, sender_id: str | None, after: str | None, limit: int
    ) -> list[ConsentRecord]:
        """Up to `limit` records of the recipient and/or sender, by record id, after `after`."""
        ...

    async def withdraw_consents(
        self, record_ids: Sequence[str], at: datetime
    ) -> list[ConsentRecord]:
        """Set withdrawn_at to `at` on those of the records not withdrawn yet (the only change
        a consent record ever takes) and return them as changed."""
        ...

    async def senders_holding(self, address_hash: str) -> list[str]:
        """The senders with consent records, suppression entries, soft bounces or data-subject
        requests of the recipient."""
        ...

    async def erase_address(
        self,
        address_hash: str,
        sender_ids: Sequence[str],
        entries: Iterable[SuppressionEntry],
    ) -> ErasureResult:
        """In one transaction, for the recipient and each of `sender_ids`: delete its consent
        records and soft bounces, remove the clear address from its suppression entries and
        data-subject requests, and add `entries` (erasure entries, keyed hash only; one
        replaces a sender-wide entry already there). Deleted data is overwritten, not only
        unlinked, so that no copy of the clear address stays in the store's files."""
        ...

    # -- admin API: data-subject requests (EU-RESPONSE-1M) ---------------------------------------

    async def add_subject_request(self, request: SubjectRequest) -> None:
        """Store a new request; a request id already used is a StoreConflict."""
        ...

    async def subject_request(self, request_id: str) -> SubjectRequest | None: ...

    async def subject_requests_page(
        self,
        open_only: bool,
        sender_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[SubjectRequest]:
        """Up to `limit` requests by (due_at, request_id), after `after`; only those not
        completed when `open_only`."""
        ...

    async def complete_subject_request(
        self, request_id: str, at: datetime
    ) -> SubjectRequest | None:
        """Mark the request completed at `at` (a completed one keeps its time); None when
        there is no such request."""
        ...
