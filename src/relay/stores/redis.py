"""The Redis store backend: what several relay nodes share (DESIGN §5), through redis-py's asyncio
client.

Same semantics as the SQLite backend (relay.stores.sqlite): keyed hashes as hex, clear addresses
only when `keep_addresses`, all-or-nothing batches, StoreConflict for a write that contradicts
stored data. Every write that a read decides runs as one MULTI/EXEC under WATCH (optimistic: a
concurrent change by another node makes it start over) or as one Lua script, so two nodes never
race between the read and the write. A batch of suppressions or consent records larger than
_CHUNK is written in transactions of _CHUNK (every consent record id is checked first): one
import never holds Redis, and so every node's RCPT lookups, for long; adding suppressions is
idempotent, so an import cut short by an outage is completed by running it again.

One Redis (or a primary with replicas) is assumed, not a Redis Cluster: a transaction touches
keys of several kinds.

Key layout (P is `[redis] key_prefix`, e.g. "relay:"; H a keyed hash in hex, S a sender id;
"\\0" separates parts of sorted-set members; records are JSON documents with datetimes as UTC
ISO 8601 text):

    P:sup:H                  hash "S\\0list_key" -> suppression entry; list_key '' for a
                             sender-wide entry (one HMGET answers a lookup at RCPT)
    P:sup:order              sorted set (score 0) "S\\0H\\0list_key": listings page by
                             ZRANGEBYLEX, in SuppressionKey order
    P:con:ID                 consent record ID
    P:con:of:H:S             sorted set of record ids by obtained_at (microseconds since 1970)
    P:con:ids, P:con:ids:S   sorted sets (score 0) of record ids: listings by id
    P:con:holders:H          set of the senders with consent records of H
    P:con:version            counter every write of a consent record increments (watched by
                             add_consents instead of each record's key)
    P:snd:S                  sender profile
    P:snd:ids                sorted set (score 0) of sender ids
    P:snd:users              hash SMTP AUTH name -> S
    P:snd:domains            hash verified From domain (lower case, no final dot) -> S
    P:snd:bounce:DOMAIN      sorted set (score 0) of the senders with that bounce_domain
    P:sb:H:S                 sorted set of soft bounces (member: the bounce's source) by time
    P:sb:d:H:S               hash source -> the soft bounce
    P:sb:holders:H           set of the senders with soft bounces of H
    P:pause:seq              the journal's last seq
    P:pause:journal          hash seq -> pause or resume (without seq)
    P:pause:action, :latest  hashes S -> its latest action, and that change's seq
    P:pause:unrecorded       sorted set of seqs by seq: not yet in the audit log
    P:pause:audit            hash seq -> audit_ref
    P:tok:ID                 API token ID
    P:tok:names, :secrets    hashes name -> ID, secret hash -> ID
    P:tok:order              sorted set of token ids by created_at (microseconds)
    P:req:ID                 data-subject request ID
    P:req:due, P:req:open    sorted sets (score 0) "due_at\\0ID": every request, the open ones
    P:req:of:H:S             set of the request ids of H and S
    P:req:holders:H          set of the senders with requests of H

The list-health figures (relay.stores.stats) stay in a SQLite file local to the node
(settings.stores_path): `stats` opens and closes with the stores.

redis-py's errors (ConnectionError, TimeoutError, any RedisError) and OSError become
StoreUnavailable in `RedisStores._errors`, the one boundary. redis-py retries a command once on
a new connection when its connection was closed (Redis restarted), never after a timeout, and
each command waits at most `[redis] timeout`: a lookup at RCPT fails fast and closed (451 4.3.0).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from relay.errors import StoreConflict, StoreUnavailable
from relay.stores.base import refuse_repeated_ids, refuse_stored_ids
from relay.stores.hashing import AddressHasher
from relay.stores.models import (
    ApiRole,
    ApiToken,
    ConsentBasis,
    ConsentRecord,
    ErasureResult,
    MessageClass,
    PauseAction,
    PauseChange,
    SenderProfile,
    SoftBounce,
    SubjectRequest,
    SubjectRequestKind,
    SuppressionEntry,
    SuppressionKey,
    SuppressionQuery,
    SuppressionReason,
    SuppressionScope,
)
from relay.stores.stats import SqliteStats

__all__ = ["RedisStores"]

log = logging.getLogger("relay.stores")

T = TypeVar("T")

# redis-py's annotations type every reply as `bytes | str` (or an awaitable of it) whatever
# decode_responses says; with decode_responses=True they are str. Client and pipelines are
# therefore handled as Any here, and replies parsed into models right away.
_Client = Any
_Pipeline = Any

_SEP = "\0"
_ConsentRow = tuple[ConsentRecord, str, str, int]  # record, its key, document, score
_BATCH = 500  # members read per step of a filtered listing
# Entries per transaction of a large batch: one import must not hold Redis (so every node's
# lookups) for longer than a few milliseconds, nor wait past [redis] timeout for its reply.
_CHUNK = 10_000

# A pause or resume is journalled only when it changes the sender's state.
# KEYS: action, seq, latest, journal, unrecorded; ARGV: sender, action, change (JSON)
_CHANGE_PAUSE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current == 'pause') == (ARGV[2] == 'pause') then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('HSET', KEYS[4], seq, ARGV[3])
redis.call('ZADD', KEYS[5], seq, seq)
return seq
"""


def _domain_key(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def _to_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r}: the stores keep timezone-aware datetimes only")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _micros(moment: datetime) -> int:
    """A sorted-set score: microseconds since 1970 (exact in a double until year 2255)."""
    _to_text(moment)  # refuses naive datetimes
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dump(record: Any) -> str:
    """A model as JSON: datetimes as UTC text, enums by value, sets sorted."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, datetime):
            value = _to_text(value)
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[field.name] = value
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _load(cls: type[T], text: str, **convert: Callable[[Any], Any]) -> T:
    data = json.loads(text)
    for name, to in convert.items():
        if data.get(name) is not None:
            data[name] = to(data[name])
    return cls(**data)


_when = datetime.fromisoformat


def _suppression(text: str) -> SuppressionEntry:
    return _load(
        SuppressionEntry,
        text,
        scope=SuppressionScope,
        reason=SuppressionReason,
        received_at=_when,
    )


def _consent(text: str) -> ConsentRecord:
    return _load(
        ConsentRecord,
        text,
        scope=tuple,
        basis=ConsentBasis,
        jurisdictions=frozenset,
        obtained_at=_when,
        expires_at=_when,
        withdrawn_at=_when,
    )


def _sender(text: str) -> SenderProfile:
    return _load(
        SenderProfile, text, verified_domains=tuple, users=tuple, message_class=MessageClass
    )


def _token(text: str) -> ApiToken:
    return _load(ApiToken, text, role=ApiRole, created_at=_when, revoked_at=_when)


def _request(text: str) -> SubjectRequest:
    return _load(
        SubjectRequest,
        text,
        kind=SubjectRequestKind,
        received_at=_when,
        due_at=_when,
        completed_at=_when,
    )


def _pause(text: str, seq: int) -> PauseChange:
    return dataclasses.replace(_load(PauseChange, text, action=PauseAction, at=_when), seq=seq)


def _list_key(entry: SuppressionEntry) -> str:
    if entry.scope is SuppressionScope.LIST:
        if not entry.list_id:
            raise ValueError("a sender+list suppression needs a list_id")
        return entry.list_id
    return ""


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class RedisStores:
    """The Stores protocol on one Redis shared by every node. Use from one event loop; `open`
    before use."""

    def __init__(
        self,
        url: str,
        hasher: AddressHasher,
        keep_addresses: bool,
        stats_path: Path,
        *,
        key_prefix: str = "relay:",
        password: str | None = None,
        timeout: float = 0.5,
        connect_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.hasher = hasher
        self.keep_addresses = keep_addresses
        self.prefix = key_prefix
        self._password = password
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._client: _Client | None = None
        self._change_pause: Any = None  # the Lua script, registered at open
        self.stats = SqliteStats(stats_path)
        # Where, for messages: the URL without its credentials.
        scheme, _, rest = url.partition("://")
        self._where = f"{scheme}://{rest.rpartition('@')[2]}"

    @property
    def client(self) -> aioredis.Redis:
        """The client, for what else the nodes share in this Redis (the rate budget)."""
        if self._client is None:
            raise StoreUnavailable(f"{self._where}: the stores are not open")
        client: aioredis.Redis = self._client
        return client

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url,
            password=self._password,
            decode_responses=True,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._connect_timeout,
            # One immediate retry on a new connection, for a connection closed under a pooled
            # client (Redis restarted); a timeout is not retried: RCPT would wait twice.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
        )
        try:
            await self.stats.open()
        except BaseException:
            await self.close()
            raise
        self._change_pause = self._client.register_script(_CHANGE_PAUSE)
        try:
            async with self._errors("reach Redis"):
                await self._client.ping()
        except StoreUnavailable as exc:
            # Not fatal: lookups answer StoreUnavailable (451 4.3.0) until Redis answers.
            log.warning("%s", exc)

    async def close(self) -> None:
        await self.stats.close()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):  # nothing left to protect
                await client.aclose()

    async def __aenter__(self) -> RedisStores:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[_Client]:
        """The one boundary: redis-py and socket errors become StoreUnavailable naming the
        server (without credentials) and what was being done."""
        client = self._client
        if client is None:
            raise StoreUnavailable(f"{self._where}: the stores are not open")
        try:
            yield client
        except (TimeoutError, RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self._where}: cannot {doing}: {exc}") from exc

    async def _transaction(
        self, doing: str, watch: Sequence[str], body: Callable[[_Pipeline], Awaitable[T]]
    ) -> T:
        """Run `body` with `watch` watched: it reads (immediate mode), calls pipe.multi() and
        queues its writes; when a watched key changed meanwhile, it runs again. Returns what
        `body` returned."""
        result: list[T] = []

        async def attempt(pipe: _Pipeline) -> None:
            result.clear()
            result.append(await body(pipe))

        async with self._errors(doing) as client:
            await client.transaction(attempt, *watch)
        return result[0]

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _clear(self, address: str | None) -> str | None:
        return address if self.keep_addresses else None

    # -- lookups at RCPT ---------------------------------------------------------------------

    async def suppression_for(
        self, address: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        key = self._key("sup", self.hasher.hash(address))
        fields = [sender_id + _SEP]
        if list_id:
            fields.append(sender_id + _SEP + list_id)
        async with self._errors("look up a suppression") as client:
            found = await client.hmget(key, fields)
        for text in found:  # the sender-wide entry first
            if text is not None:
                return _suppression(text)
        return None

    async def consents_for(self, address: str, sender_id: str) -> list[ConsentRecord]:
        key = self._key("con", "of", self.hasher.hash(address), sender_id)
        async with self._errors("look up consent records") as client:
            ids = await client.zrevrange(key, 0, -1)  # newest first, then by id, descending
            texts = await client.mget([self._key("con", i) for i in ids]) if ids else []
        return [_consent(text) for text in texts if text is not None]

    async def sender_for_user(self, user: str) -> SenderProfile | None:
        return await self._sender_by("users", user)

    async def sender_for_domain(self, domain: str) -> SenderProfile | None:
        return await self._sender_by("domains", _domain_key(domain))

    async def _sender_by(self, index: str, value: str) -> SenderProfile | None:
        async with self._errors("look up a sender profile") as client:
            sender_id = await client.hget(self._key("snd", index), value)
            if sender_id is None:
                return None
            text = await client.get(self._key("snd", sender_id))
        return None if text is None else _sender(text)

    async def sender_for_bounce_domain(self, domain: str) -> SenderProfile | None:
        key = _domain_key(domain)
        try:
            unicode_key = key.encode("ascii").decode("idna")  # VERP addresses use A-labels
        except UnicodeError:
            unicode_key = key
        async with self._errors("look up a sender profile") as client:
            ids: list[str] = []
            for name in dict.fromkeys((key, unicode_key)):
                ids.extend(await client.zrange(self._key("snd", "bounce", name), 0, 0))
            if not ids:
                return None
            text = await client.get(self._key("snd", min(ids)))
        return None if text is None else _sender(text)

    async def sender(self, sender_id: str) -> SenderProfile | None:
        async with self._errors("look up a sender profile") as client:
            text = await client.get(self._key("snd", sender_id))
        return None if text is None else _sender(text)

    async def senders(self) -> list[SenderProfile]:
        async with self._errors("list sender profiles") as client:
            ids = await client.zrange(self._key("snd", "ids"), 0, -1)
            texts = await client.mget([self._key("snd", i) for i in ids]) if ids else []
        return [_sender(text) for text in texts if text is not None]

    # -- writing -----------------------------------------------------------------------------

    async def add_suppressions(self, entries: Iterable[SuppressionEntry]) -> int:
        rows = [(entry, _list_key(entry)) for entry in entries]
        order = self._key("sup", "order")
        added = 0
        async with self._errors("add suppressions") as client:
            for chunk in _chunks(rows):
                pipe = client.pipeline(transaction=True)  # MULTI/EXEC: all or nothing
                for entry, list_key in chunk:
                    doc = _dump(dataclasses.replace(entry, address=self._clear(entry.address)))
                    field = entry.sender_id + _SEP + list_key
                    pipe.hsetnx(self._key("sup", entry.address_hash), field, doc)
                    member = _SEP.join((entry.sender_id, entry.address_hash, list_key))
                    pipe.zadd(order, {member: 0})
                results = await pipe.execute()
                added += sum(int(new) for new in results[0::2])
        return added

    async def add_consents(self, records: Iterable[ConsentRecord]) -> int:
        # Documents and scores first: a naive datetime is refused before anything is written.
        rows = [
            (
                record,
                self._key("con", record.record_id),
                _dump(dataclasses.replace(record, address=self._clear(record.address))),
                _micros(record.obtained_at),
            )
            for record in records
        ]
        refuse_repeated_ids(record.record_id for record, *_ in rows)
        version = self._key("con", "version")

        def refuse_stored(chunk: list[_ConsentRow], found: Any) -> None:
            stored = zip(chunk, found, strict=True)
            refuse_stored_ids(record.record_id for (record, *_), text in stored if text is not None)

        # Every id is checked before anything is written; each chunk is checked again in its
        # transaction (watching the version every writer of a record changes, not each key:
        # WATCH of thousands of keys costs Redis time quadratic in their number).
        async with self._errors("add consent records") as client:
            for chunk in _chunks(rows):
                refuse_stored(chunk, await client.mget([key for _, key, *_ in chunk]))
        for chunk in _chunks(rows):

            async def add(pipe: _Pipeline, chunk: list[_ConsentRow] = chunk) -> None:
                refuse_stored(chunk, await pipe.mget([key for _, key, *_ in chunk]))
                pipe.multi()
                for record, key, doc, score in chunk:
                    h, s, record_id = record.address_hash, record.sender_id, record.record_id
                    pipe.set(key, doc)
                    pipe.zadd(self._key("con", "of", h, s), {record_id: score})
                    pipe.zadd(self._key("con", "ids"), {record_id: 0})
                    pipe.zadd(self._key("con", "ids", s), {record_id: 0})
                    pipe.sadd(self._key("con", "holders", h), s)
                pipe.incr(version)

            await self._transaction("add consent records", [version], add)
        return len(rows)

    async def put_senders(self, profiles: Iterable[SenderProfile]) -> int:
        batch = list({profile.sender_id: profile for profile in profiles}.values())
        if not batch:
            return 0
        users_key, domains_key = self._key("snd", "users"), self._key("snd", "domains")
        profile_keys = [self._key("snd", profile.sender_id) for profile in batch]

        async def put(pipe: _Pipeline) -> int:
            replacing = {p.sender_id for p in batch}
            old = [_sender(t) for t in await pipe.mget(profile_keys) if t is not None]
            claims: dict[str, dict[str, str]] = {"user": {}, "domain": {}}
            for what, index, values_of in (
                ("user", users_key, lambda p: list(p.users)),
                ("domain", domains_key, lambda p: [_domain_key(d) for d in p.verified_domains]),
            ):
                wanted = list(dict.fromkeys(v for p in batch for v in values_of(p)))
                found = await pipe.hmget(index, wanted) if wanted else []
                owners = dict(zip(wanted, found, strict=True))
                for profile in batch:
                    for value in dict.fromkeys(values_of(profile)):
                        owner = claims[what].get(value)
                        if owner is None and owners[value] not in replacing:
                            owner = owners[value]
                        if owner is not None and owner != profile.sender_id:
                            raise StoreConflict(
                                f"{what} {value!r} of sender {profile.sender_id!r} already"
                                f" belongs to sender {owner!r}"
                            )
                        claims[what][value] = profile.sender_id
            pipe.multi()
            for profile in old:  # release what the replaced profiles held
                if profile.users:
                    pipe.hdel(users_key, *profile.users)
                domains = [_domain_key(d) for d in profile.verified_domains]
                if domains:
                    pipe.hdel(domains_key, *domains)
                if profile.bounce_domain is not None:
                    pipe.zrem(self._key("snd", "bounce", profile.bounce_domain), profile.sender_id)
            for profile, key in zip(batch, profile_keys, strict=True):
                pipe.set(key, _dump(profile))
                pipe.zadd(self._key("snd", "ids"), {profile.sender_id: 0})
                if profile.bounce_domain is not None:
                    pipe.zadd(
                        self._key("snd", "bounce", profile.bounce_domain), {profile.sender_id: 0}
                    )
            if claims["user"]:
                pipe.hset(users_key, mapping=claims["user"])
            if claims["domain"]:
                pipe.hset(domains_key, mapping=claims["domain"])
            return len(batch)

        return await self._transaction(
            "store sender profiles", [users_key, domains_key, *profile_keys], put
        )

    async def add_soft_bounce(self, bounce: SoftBounce, since: datetime) -> int:
        h, s = bounce.address_hash, bounce.sender_id
        times = self._key("sb", h, s)
        at, start = _micros(bounce.at), _micros(since)
        async with self._errors("keep a soft bounce") as client:
            pipe = client.pipeline(transaction=True)
            pipe.hsetnx(self._key("sb", "d", h, s), bounce.source, _dump(bounce))
            pipe.zadd(times, {bounce.source: at}, nx=True)  # a bounce processed twice counts once
            pipe.sadd(self._key("sb", "holders", h), s)
            pipe.zcount(times, start, "+inf")
            results = await pipe.execute()
        return int(results[-1])

    # -- sender pauses -------------------------------------------------------------------

    async def pause_state(self, sender_id: str) -> PauseChange | None:
        async with self._errors("look up a sender pause") as client:
            seq = await client.hget(self._key("pause", "latest"), sender_id)
            if seq is None:
                return None
            text = await client.hget(self._key("pause", "journal"), seq)
        return None if text is None else _pause(text, int(seq))

    async def change_pause(self, change: PauseChange) -> PauseChange | None:
        doc = _dump(change)
        async with self._errors("pause or resume a sender"):
            seq = await self._change_pause(
                keys=[
                    self._key("pause", "action"),
                    self._key("pause", "seq"),
                    self._key("pause", "latest"),
                    self._key("pause", "journal"),
                    self._key("pause", "unrecorded"),
                ],
                args=[change.sender_id, change.action.value, doc],
            )
        return None if not int(seq) else dataclasses.replace(change, seq=int(seq))

    async def unrecorded_pause_changes(self) -> list[PauseChange]:
        async with self._errors("read unrecorded sender pauses") as client:
            seqs = await client.zrange(self._key("pause", "unrecorded"), 0, -1)
            texts = await client.hmget(self._key("pause", "journal"), seqs) if seqs else []
        return [
            _pause(text, int(seq))
            for seq, text in zip(seqs, texts, strict=True)
            if text is not None
        ]

    async def pause_changes_recorded(self, audit_refs: Mapping[int, str]) -> None:
        if not audit_refs:
            return
        async with self._errors("mark sender pauses recorded") as client:
            pipe = client.pipeline(transaction=True)
            pipe.hset(
                self._key("pause", "audit"),
                mapping={str(seq): ref for seq, ref in audit_refs.items()},
            )
            pipe.zrem(self._key("pause", "unrecorded"), *(str(seq) for seq in audit_refs))
            await pipe.execute()

    # -- admin API tokens -------------------------------------------------------------------

    async def add_api_token(self, token: ApiToken) -> None:
        names, secrets = self._key("tok", "names"), self._key("tok", "secrets")
        key = self._key("tok", token.token_id)
        doc, score = _dump(token), _micros(token.created_at)

        async def add(pipe: _Pipeline) -> None:
            if await pipe.hexists(names, token.name):
                raise StoreConflict(f"an API token with the name {token.name!r} exists already")
            if await pipe.exists(key):
                raise StoreConflict(f"an API token with the id {token.token_id!r} exists already")
            if await pipe.hexists(secrets, token.secret_hash):
                raise StoreConflict("an API token with that secret exists already")
            pipe.multi()
            pipe.set(key, doc)
            pipe.hset(names, token.name, token.token_id)
            pipe.hset(secrets, token.secret_hash, token.token_id)
            pipe.zadd(self._key("tok", "order"), {token.token_id: score})

        await self._transaction("store an API token", [names, secrets, key], add)

    async def api_token(self, secret_hash: str) -> ApiToken | None:
        async with self._errors("look up an API token") as client:
            token_id = await client.hget(self._key("tok", "secrets"), secret_hash)
            if token_id is None:
                return None
            text = await client.get(self._key("tok", token_id))
        return None if text is None else _token(text)

    async def api_tokens(self) -> list[ApiToken]:
        async with self._errors("list API tokens") as client:
            ids = await client.zrange(self._key("tok", "order"), 0, -1)
            texts = await client.mget([self._key("tok", i) for i in ids]) if ids else []
        return [_token(text) for text in texts if text is not None]

    async def revoke_api_token(self, token_id: str, at: datetime) -> ApiToken | None:
        key = self._key("tok", token_id)
        _to_text(at)

        async def revoke(pipe: _Pipeline) -> ApiToken | None:
            text = await pipe.get(key)
            if text is None:
                return None
            token = _token(text)
            pipe.multi()
            if token.revoked_at is None:
                token = dataclasses.replace(token, revoked_at=at)
                pipe.set(key, _dump(token))
            return token

        return await self._transaction("revoke an API token", [key], revoke)

    # -- admin API: suppressions ---------------------------------------------------------------

    async def suppressions_page(
        self, query: SuppressionQuery, after: SuppressionKey | None, limit: int
    ) -> list[SuppressionEntry]:
        if limit <= 0:
            return []

        def wanted(entry: SuppressionEntry) -> bool:
            return (
                (query.sender_id is None or entry.sender_id == query.sender_id)
                and (query.reason is None or entry.reason is query.reason)
                and (query.list_id is None or entry.list_id == query.list_id)
                and (query.received_since is None or entry.received_at >= query.received_since)
                and (query.received_until is None or entry.received_at < query.received_until)
            )

        after_member = None if after is None else _SEP.join(after)
        async with self._errors("list suppressions") as client:
            if query.address_hash is not None:  # one recipient: one hash, sorted here
                fields = await client.hgetall(self._key("sup", query.address_hash))
                found = []
                for field, text in fields.items():
                    sender_id, _, list_key = field.partition(_SEP)
                    member = _SEP.join((sender_id, query.address_hash, list_key))
                    entry = _suppression(text)
                    if (after_member is None or member > after_member) and wanted(entry):
                        found.append((member, entry))
                return [entry for _, entry in sorted(found, key=lambda pair: pair[0])[:limit]]
            low, high = "-", "+"
            if query.sender_id is not None:
                low, high = f"[{query.sender_id}{_SEP}", f"({query.sender_id}\x01"
                if after_member is not None and after_member >= query.sender_id + _SEP:
                    low = f"({after_member}"
            elif after_member is not None:
                low = f"({after_member}"
            entries: list[SuppressionEntry] = []
            while len(entries) < limit:
                members = await client.zrangebylex(
                    self._key("sup", "order"), low, high, start=0, num=_BATCH
                )
                if not members:
                    break
                pipe = client.pipeline(transaction=False)
                for member in members:
                    sender_id, address_hash, list_key = member.split(_SEP)
                    pipe.hget(self._key("sup", address_hash), sender_id + _SEP + list_key)
                for text in await pipe.execute():
                    if text is not None and wanted(entry := _suppression(text)):
                        entries.append(entry)
                low = f"({members[-1]}"
        return entries[:limit]

    async def suppression_entry(
        self, address_hash: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        async with self._errors("look up a suppression") as client:
            text = await client.hget(
                self._key("sup", address_hash), sender_id + _SEP + (list_id or "")
            )
        return None if text is None else _suppression(text)

    async def remove_suppression(
        self, address_hash: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        key, field = self._key("sup", address_hash), sender_id + _SEP + (list_id or "")

        async def remove(pipe: _Pipeline) -> SuppressionEntry | None:
            text = await pipe.hget(key, field)
            if text is None:
                return None
            entry = _suppression(text)
            if entry.reason is SuppressionReason.ERASURE:
                raise StoreConflict(
                    "an erasure entry cannot be removed: its keyed hash is what keeps an erased"
                    " address suppressed (EU-ERASURE, PRC-PIPL-DELETE)"
                )
            pipe.multi()
            pipe.hdel(key, field)
            pipe.zrem(
                self._key("sup", "order"), _SEP.join((sender_id, address_hash, list_id or ""))
            )
            return entry

        return await self._transaction("remove a suppression", [key], remove)

    # -- admin API: consent, erasure -----------------------------------------------------------

    async def consent_record(self, record_id: str) -> ConsentRecord | None:
        async with self._errors("read a consent record") as client:
            text = await client.get(self._key("con", record_id))
        return None if text is None else _consent(text)

    async def consents_page(
        self, address_hash: str | None, sender_id: str | None, after: str | None, limit: int
    ) -> list[ConsentRecord]:
        if limit <= 0:
            return []
        async with self._errors("list consent records") as client:
            if address_hash is not None:
                if sender_id is not None:
                    senders = [sender_id]
                else:
                    senders = sorted(
                        await client.smembers(self._key("con", "holders", address_hash))
                    )
                ids: list[str] = []
                for holder in senders:
                    ids.extend(
                        await client.zrange(self._key("con", "of", address_hash, holder), 0, -1)
                    )
                ids = sorted(i for i in ids if after is None or i > after)[:limit]
            else:
                index = (
                    self._key("con", "ids")
                    if sender_id is None
                    else self._key("con", "ids", sender_id)
                )
                low = "-" if after is None else f"({after}"
                ids = await client.zrangebylex(index, low, "+", start=0, num=limit)
            texts = await client.mget([self._key("con", i) for i in ids]) if ids else []
        return [_consent(text) for text in texts if text is not None]

    async def withdraw_consents(
        self, record_ids: Sequence[str], at: datetime
    ) -> list[ConsentRecord]:
        ids = sorted(set(record_ids))
        if not ids:
            return []
        _to_text(at)
        keys = [self._key("con", record_id) for record_id in ids]

        async def withdraw(pipe: _Pipeline) -> list[ConsentRecord]:
            changed = [
                dataclasses.replace(record, withdrawn_at=at)
                for text in await pipe.mget(keys)
                if text is not None
                and ((record := _consent(text)).withdrawn_at is None or record.withdrawn_at > at)
            ]
            pipe.multi()
            for record in changed:
                pipe.set(self._key("con", record.record_id), _dump(record))
            pipe.incr(self._key("con", "version"))
            return changed

        return await self._transaction("withdraw consent records", keys, withdraw)

    async def senders_holding(self, address_hash: str) -> list[str]:
        async with self._errors("find the senders holding an address") as client:
            pipe = client.pipeline(transaction=True)
            pipe.hkeys(self._key("sup", address_hash))
            for kind in ("con", "sb", "req"):
                pipe.smembers(self._key(kind, "holders", address_hash))
            fields, *holders = await pipe.execute()
        found = {field.partition(_SEP)[0] for field in fields}
        for members in holders:
            found.update(members)
        return sorted(found)

    async def erase_address(
        self,
        address_hash: str,
        sender_ids: Sequence[str],
        entries: Iterable[SuppressionEntry],
    ) -> ErasureResult:
        h = address_hash
        added = [(dataclasses.replace(entry, address=None), _list_key(entry)) for entry in entries]
        docs = [_dump(entry) for entry, _ in added]
        senders = list(dict.fromkeys(sender_ids))
        sup_key = self._key("sup", h)
        watch = [sup_key] + [
            self._key(kind, *parts, h, s)
            for s in senders
            for kind, *parts in (("con", "of"), ("sb",), ("req", "of"))
        ]

        async def erase(pipe: _Pipeline) -> ErasureResult:
            deleted_of: dict[str, list[str]] = {}
            bounces = 0
            request_docs: dict[str, str] = {}
            for s in senders:
                deleted_of[s] = sorted(await pipe.zrange(self._key("con", "of", h, s), 0, -1))
                bounces += int(await pipe.zcard(self._key("sb", h, s)))
                request_ids = sorted(await pipe.smembers(self._key("req", "of", h, s)))
                if request_ids:
                    request_keys = [self._key("req", i) for i in request_ids]
                    await pipe.watch(*request_keys)
                    for key, text in zip(request_keys, await pipe.mget(request_keys), strict=True):
                        if text is not None and (request := _request(text)).address is not None:
                            request_docs[key] = _dump(dataclasses.replace(request, address=None))
            suppression_docs: dict[str, str] = {}
            for field, text in (await pipe.hgetall(sup_key)).items():
                entry = _suppression(text)
                if field.partition(_SEP)[0] in senders and entry.address is not None:
                    suppression_docs[field] = _dump(dataclasses.replace(entry, address=None))
            deleted = [record_id for s in senders for record_id in deleted_of[s]]
            pipe.multi()
            for s in senders:
                ids = deleted_of[s]
                pipe.delete(
                    self._key("con", "of", h, s),
                    self._key("sb", h, s),
                    self._key("sb", "d", h, s),
                )
                for kind in ("con", "sb"):
                    pipe.srem(self._key(kind, "holders", h), s)
                if ids:
                    pipe.zrem(self._key("con", "ids", s), *ids)
            if deleted:
                pipe.delete(*(self._key("con", i) for i in deleted))
                pipe.zrem(self._key("con", "ids"), *deleted)
                pipe.incr(self._key("con", "version"))
            if suppression_docs:
                pipe.hset(sup_key, mapping=suppression_docs)
            for key, doc in request_docs.items():
                pipe.set(key, doc)
            for (entry, list_key), doc in zip(added, docs, strict=True):
                pipe.hset(
                    self._key("sup", entry.address_hash), entry.sender_id + _SEP + list_key, doc
                )
                pipe.zadd(
                    self._key("sup", "order"),
                    {_SEP.join((entry.sender_id, entry.address_hash, list_key)): 0},
                )
            return ErasureResult(
                tuple(deleted), len(suppression_docs), bounces, len(request_docs), len(added)
            )

        return await self._transaction("erase an address", watch, erase)

    # -- admin API: data-subject requests ----------------------------------------------------

    async def add_subject_request(self, request: SubjectRequest) -> None:
        key = self._key("req", request.request_id)
        doc = _dump(dataclasses.replace(request, address=self._clear(request.address)))
        member = _to_text(request.due_at) + _SEP + request.request_id

        async def add(pipe: _Pipeline) -> None:
            if await pipe.exists(key):
                raise StoreConflict(f"a request with the id {request.request_id!r} exists already")
            pipe.multi()
            pipe.set(key, doc)
            pipe.zadd(self._key("req", "due"), {member: 0})
            if request.completed_at is None:
                pipe.zadd(self._key("req", "open"), {member: 0})
            pipe.sadd(
                self._key("req", "of", request.address_hash, request.sender_id), request.request_id
            )
            pipe.sadd(self._key("req", "holders", request.address_hash), request.sender_id)

        await self._transaction("store a data-subject request", [key], add)

    async def subject_request(self, request_id: str) -> SubjectRequest | None:
        async with self._errors("read a data-subject request") as client:
            text = await client.get(self._key("req", request_id))
        return None if text is None else _request(text)

    async def subject_requests_page(
        self,
        open_only: bool,
        sender_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[SubjectRequest]:
        if limit <= 0:
            return []
        index = self._key("req", "open" if open_only else "due")
        low = "-" if after is None else f"({_to_text(after[0])}{_SEP}{after[1]}"
        found: list[SubjectRequest] = []
        async with self._errors("list data-subject requests") as client:
            while len(found) < limit:
                members = await client.zrangebylex(index, low, "+", start=0, num=_BATCH)
                if not members:
                    break
                keys = [self._key("req", member.partition(_SEP)[2]) for member in members]
                for text in await client.mget(keys):
                    if text is None:
                        continue
                    request = _request(text)
                    if sender_id is None or request.sender_id == sender_id:
                        found.append(request)
                low = f"({members[-1]}"
        return found[:limit]

    async def complete_subject_request(
        self, request_id: str, at: datetime
    ) -> SubjectRequest | None:
        key = self._key("req", request_id)
        _to_text(at)

        async def complete(pipe: _Pipeline) -> SubjectRequest | None:
            text = await pipe.get(key)
            if text is None:
                return None
            request = _request(text)
            pipe.multi()
            if request.completed_at is None:
                request = dataclasses.replace(request, completed_at=at)
                pipe.set(key, _dump(request))
                pipe.zrem(self._key("req", "open"), _to_text(request.due_at) + _SEP + request_id)
            return request

        return await self._transaction("complete a data-subject request", [key], complete)
