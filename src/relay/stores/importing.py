"""Import files for the stores: CSV (with a header row) or JSON Lines, one record per row.

Every row is validated against a row schema (unknown fields refused); the problems of all rows
are collected and reported as `FILE:LINE: problem`, LINE being the physical line in the file (the
CSV header is line 1). A file with any problem imports nothing: the readers raise ImportRowError
before a store is touched. The same reader takes request bodies of the admin API
(`parse_suppressions`, `parse_consents`), whose problems read `line N: problem`.

Suppression exports (`SUPPRESSION_COLUMNS`, `suppression_export_row`) are written in the import
format, so that an export imports again as it was. An entry whose clear address is not kept
(an erasure, or `keep_addresses` off) is exported by its keyed hash (`address_hash`): such a row
means something only to relay nodes sharing the same address HMAC key.

Consent rows enforce what must be true when a record is created (COMPLIANCE §1.2):
EU-CONSENT-PROOF (GDPR Art. 7(1)): obtained_at, the mechanism (`source`) and `evidence_ref` are
required, so consent can be demonstrated; EU-CONSENT-NOT-PRETICKED (GDPR Art. 4(11), 7(2),(4)):
`affirmative_action` must be true and `bundled` false.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from relay.errors import ImportRowError
from relay.stores.hashing import AddressHasher
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    MessageClass,
    SenderProfile,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)
from relay.timezones import TimeZoneName

__all__ = [
    "EU_CONSENT_NOT_PRETICKED",
    "EU_CONSENT_PROOF",
    "SUPPRESSION_COLUMNS",
    "Address",
    "ConsentRow",
    "Domain",
    "ImportFormat",
    "SenderFields",
    "SenderRow",
    "SuppressionRow",
    "Text",
    "detect_format",
    "parse_consents",
    "parse_suppressions",
    "read_consents",
    "read_senders",
    "read_suppressions",
    "suppression_export_row",
]

EU_CONSENT_PROOF = "EU-CONSENT-PROOF (GDPR Art. 7(1))"
EU_CONSENT_NOT_PRETICKED = "EU-CONSENT-NOT-PRETICKED (GDPR Art. 4(11), 7(2),(4))"


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


_SUFFIXES = {".csv": ImportFormat.CSV, ".jsonl": ImportFormat.JSONL, ".ndjson": ImportFormat.JSONL}


def detect_format(path: Path, explicit: str | None = None) -> ImportFormat:
    """The explicit format if given, else the one the file name's extension says."""
    if explicit is not None:
        try:
            return ImportFormat(explicit.lower())
        except ValueError:
            raise ImportRowError(
                [f"{path}: unknown format {explicit!r}; use csv or jsonl"]
            ) from None
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise ImportRowError(
            [
                f"{path}: cannot tell the format from the file name; name it .csv, .jsonl or"
                " .ndjson, or give --format csv|jsonl"
            ]
        ) from None


# -- field types -------------------------------------------------------------------------------

_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\".]+(\.[^@\s<>()\[\],;:\".]+)+")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_KEYED_HASH = re.compile(r"[0-9a-f]{64}")


def _address(value: str) -> str:
    value = value.strip()
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value!r} does not look like an e-mail address (local@domain.tld)")
    return value


def _keyed_hash(value: str) -> str:
    value = value.strip().lower()
    if not _KEYED_HASH.fullmatch(value):
        raise ValueError(f"{value!r} is not a keyed address hash (64 hexadecimal digits)")
    return value


def _words(value: object) -> object:
    """A space-separated string (CSV) or a list (JSON) as a list of words."""
    if isinstance(value, str):
        return value.split()
    return value


def _domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    if not _DOMAIN.fullmatch(ascii_domain):
        raise ValueError(f"{value!r} is not a domain name")
    return domain


def _country(value: str) -> str:
    code = value.strip().upper()
    if not _COUNTRY.fullmatch(code):
        raise ValueError(f"{value!r} is not a two-letter jurisdiction code (US, EU, CN, ...)")
    return code


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _contact(value: str) -> str:
    value = value.strip()
    if value.startswith(("https://", "http://", "mailto:")) or _ADDRESS.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is neither an e-mail address nor an http(s) or mailto: URL")


Text = Annotated[str, Field(min_length=1)]
Address = Annotated[str, AfterValidator(_address)]
KeyedHash = Annotated[str, AfterValidator(_keyed_hash)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Domain = Annotated[str, AfterValidator(_domain)]
Country = Annotated[str, AfterValidator(_country)]
Words = Annotated[tuple[Text, ...], BeforeValidator(_words)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # Columns of which a CSV header must name at least one (checked with the required ones).
    one_of_columns: ClassVar[tuple[tuple[str, ...], ...]] = ()


def _at_least_one(hint: str) -> AfterValidator:
    """A validator for a list field that refuses an empty list with `hint`."""

    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError(hint)
        return values

    return AfterValidator(check)


def _now(info: ValidationInfo) -> datetime:
    context = info.context or {}
    now = context.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


# -- row schemas -------------------------------------------------------------------------------


class SuppressionRow(_Row):
    one_of_columns = (("address", "address_hash"),)

    address: Address | None = None
    address_hash: KeyedHash | None = None  # an export's entry without its clear address
    sender_id: Text
    scope: SuppressionScope = SuppressionScope.SENDER
    list_id: Text | None = None
    reason: SuppressionReason = SuppressionReason.MANUAL
    source: Text | None = None  # default: import:<file name>
    received_at: UtcDatetime | None = None  # default: the time of the import
    source_message_id: Text | None = None

    @model_validator(mode="after")
    def _list_needs_id(self) -> Self:
        if (self.address is None) == (self.address_hash is None):
            raise ValueError("give either address or address_hash (from an export), not both")
        if self.scope is SuppressionScope.LIST and self.list_id is None:
            raise ValueError("scope sender+list needs a list_id")
        return self

    def to_entry(self, hasher: AddressHasher, source: str, now: datetime) -> SuppressionEntry:
        address_hash = self.address_hash
        if self.address is not None:
            address_hash = hasher.hash(self.address)
        assert address_hash is not None  # the model validator wants one of them
        return SuppressionEntry(
            address_hash=address_hash,
            sender_id=self.sender_id,
            scope=self.scope,
            reason=self.reason,
            source=self.source or source,
            received_at=self.received_at or now,
            list_id=self.list_id,
            source_message_id=self.source_message_id,
            address=self.address,
        )


# What each proof field of a consent row holds, said when it is missing (EU-CONSENT-PROOF).
_PROOF = {
    "source": "the mechanism that collected consent (form id, IP address, user agent)",
    "evidence_ref": "a reference to the stored proof of consent; a record without evidence is"
    " refused",
}


class ConsentRow(_Row):
    record_id: Text
    address: Address
    sender_id: Text
    scope: Words  # list ids, or "*" for all commercial mail of the sender
    basis: ConsentBasis
    jurisdictions: Annotated[
        tuple[Country, ...],
        BeforeValidator(_words),
        _at_least_one("give the recipient's jurisdiction(s), e.g. EU or US CA"),
    ]
    # Proof (EU-CONSENT-PROOF) and affirmative action (EU-CONSENT-NOT-PRETICKED) are checked by
    # the validators below, so that a missing value names the rule it breaks.
    obtained_at: UtcDatetime | None = Field(default=None, validate_default=True)
    source: str | None = Field(default=None, validate_default=True)
    evidence_ref: str | None = Field(default=None, validate_default=True)
    notice_version: Text | None = None
    affirmative_action: bool | None = Field(default=None, validate_default=True)
    bundled: bool = False
    expires_at: UtcDatetime | None = None
    withdrawn_at: UtcDatetime | None = None
    product_category: Text | None = None
    time_zone: TimeZoneName | None = None  # the recipient's (send windows)

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: tuple[str, ...]) -> tuple[str, ...]:
        if not scope:
            raise ValueError("give the list ids the consent covers, or * for all commercial mail")
        if "*" in scope and len(scope) > 1:
            raise ValueError("* (all commercial mail) stands alone")
        return tuple(dict.fromkeys(scope))

    @field_validator("obtained_at")
    @classmethod
    def _obtained(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        if moment is None:
            raise ValueError(f"required by {EU_CONSENT_PROOF}: when consent was given")
        if moment > _now(info):
            raise ValueError(f"{moment.isoformat()} is in the future")
        return moment

    @field_validator("source", "evidence_ref")
    @classmethod
    def _proof(cls, proof: str | None, info: ValidationInfo) -> str:
        if not proof:
            raise ValueError(f"required by {EU_CONSENT_PROOF}: {_PROOF[info.field_name or '']}")
        return proof

    @field_validator("affirmative_action")
    @classmethod
    def _affirmative(cls, affirmative: bool | None) -> bool:
        if affirmative is not True:
            state = "missing" if affirmative is None else "false"
            raise ValueError(
                f"{state}, must be true: {EU_CONSENT_NOT_PRETICKED}: consent needs a clear"
                " affirmative act; a pre-ticked box, silence or inactivity is not consent"
            )
        return affirmative

    @field_validator("bundled")
    @classmethod
    def _not_bundled(cls, bundled: bool) -> bool:
        if bundled:
            raise ValueError(
                f"must be false: {EU_CONSENT_NOT_PRETICKED}: consent bundled with terms of"
                " service or other purposes is not freely given"
            )
        return bundled

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.basis is ConsentBasis.SOFT_OPTIN_CUSTOMER and self.product_category is None:
            raise ValueError(
                "basis soft_optin_customer needs product_category (what the customer bought)"
            )
        assert self.obtained_at is not None  # the field validator refused None
        if self.expires_at is not None and self.expires_at <= self.obtained_at:
            raise ValueError("expires_at must be later than obtained_at")
        if self.withdrawn_at is not None and self.withdrawn_at < self.obtained_at:
            raise ValueError("withdrawn_at must not be earlier than obtained_at")
        return self

    def to_record(self, hasher: AddressHasher) -> ConsentRecord:
        # the field validators refused missing values
        assert self.obtained_at is not None
        assert self.source is not None
        assert self.evidence_ref is not None
        return ConsentRecord(
            record_id=self.record_id,
            address_hash=hasher.hash(self.address),
            sender_id=self.sender_id,
            scope=self.scope,
            basis=self.basis,
            jurisdictions=frozenset(self.jurisdictions),
            obtained_at=self.obtained_at,
            source=self.source,
            evidence_ref=self.evidence_ref,
            notice_version=self.notice_version,
            affirmative_action=True,
            bundled=False,
            expires_at=self.expires_at,
            withdrawn_at=self.withdrawn_at,
            product_category=self.product_category,
            address=self.address,
            time_zone=self.time_zone,
        )


class SenderFields(_Row):
    """A sender profile but its id (the admin API takes the id from the path)."""

    legal_name: Text
    postal_address: Text
    contact: Annotated[str, AfterValidator(_contact)]
    verified_domains: Annotated[
        tuple[Domain, ...],
        BeforeValidator(_words),
        _at_least_one("give at least one verified From domain"),
    ]
    default_jurisdiction: Country | None = None
    message_class: MessageClass = MessageClass.COMMERCIAL
    users: Words = ()
    fix_us: bool = False  # opt in to fixes ordered by US rules (COMPLIANCE §11 point 11)
    fixes_allowed: bool = True  # False: opt out of every fix; such mail is refused instead
    bounce_domain: Domain | None = None  # VERP return paths under it (relay.rewrite.verp)
    time_zone: TimeZoneName | None = None  # recipients' local time when nothing else tells

    @field_validator("bounce_domain")
    @classmethod
    def _bounce_domain_verified(cls, domain: str | None, info: ValidationInfo) -> str | None:
        # Without valid verified_domains their own problem is reported; nothing to check against.
        verified = info.data.get("verified_domains", ())
        if domain is None or not verified:
            return domain
        if not any(domain == parent or domain.endswith(f".{parent}") for parent in verified):
            raise ValueError(
                f"{domain!r} is neither one of the verified_domains nor a subdomain of one"
            )
        return domain


class SenderRow(SenderFields):
    sender_id: Text

    def to_profile(self) -> SenderProfile:
        return SenderProfile(
            sender_id=self.sender_id,
            legal_name=self.legal_name,
            postal_address=self.postal_address,
            contact=self.contact,
            verified_domains=tuple(dict.fromkeys(self.verified_domains)),
            default_jurisdiction=self.default_jurisdiction,
            message_class=self.message_class,
            users=tuple(dict.fromkeys(self.users)),
            fix_us=self.fix_us,
            fixes_allowed=self.fixes_allowed,
            bounce_domain=self.bounce_domain,
            time_zone=self.time_zone,
        )


# -- readers -----------------------------------------------------------------------------------


def read_suppressions(
    path: Path,
    hasher: AddressHasher,
    *,
    file_format: str | None = None,
    now: datetime | None = None,
) -> list[SuppressionEntry]:
    """Suppression entries of an import file; ImportRowError lists every bad row."""
    kind = detect_format(path, file_format)
    return _suppressions(
        _read_bytes(path), kind, hasher, _in_file(path), f"import:{path.name}", now
    )


def parse_suppressions(
    data: bytes,
    kind: ImportFormat,
    hasher: AddressHasher,
    *,
    source: str,
    now: datetime | None = None,
) -> list[SuppressionEntry]:
    """Suppression entries of a request body (`source` for rows naming none); ImportRowError
    lists every bad row as `line N: problem`."""
    return _suppressions(data, kind, hasher, _in_body, source, now)


def read_consents(
    path: Path,
    hasher: AddressHasher,
    *,
    file_format: str | None = None,
    now: datetime | None = None,
) -> list[ConsentRecord]:
    """Consent records of an import file; ImportRowError lists every bad row."""
    kind = detect_format(path, file_format)
    return _consents(_read_bytes(path), kind, hasher, _in_file(path), now)


def parse_consents(
    data: bytes, kind: ImportFormat, hasher: AddressHasher, *, now: datetime | None = None
) -> list[ConsentRecord]:
    """Consent records of a request body; ImportRowError lists every bad row as `line N:
    problem`."""
    return _consents(data, kind, hasher, _in_body, now)


def read_senders(path: Path, *, file_format: str | None = None) -> list[SenderProfile]:
    """Sender profiles of an import file; ImportRowError lists every bad row."""
    kind = detect_format(path, file_format)
    where = _in_file(path)
    rows = _validated(_read_bytes(path), kind, SenderRow, datetime.now(UTC), where)
    _refuse_repeats(
        where,
        rows,
        {
            "sender_id": lambda row: [row.sender_id],
            "verified_domains": lambda row: list(dict.fromkeys(row.verified_domains)),
            "users": lambda row: list(dict.fromkeys(row.users)),
        },
    )
    return [row.to_profile() for _, row in rows]


# Where a problem is: a line of the file or body (None: the whole of it).
Where = Callable[[int | None], str]


def _in_file(path: Path) -> Where:
    return lambda line: str(path) if line is None else f"{path}:{line}"


def _in_body(line: int | None) -> str:
    return "body" if line is None else f"line {line}"


def _suppressions(
    data: bytes,
    kind: ImportFormat,
    hasher: AddressHasher,
    where: Where,
    source: str,
    now: datetime | None,
) -> list[SuppressionEntry]:
    now = now or datetime.now(UTC)
    rows = _validated(data, kind, SuppressionRow, now, where)
    return [row.to_entry(hasher, source, now) for _, row in rows]


def _consents(
    data: bytes, kind: ImportFormat, hasher: AddressHasher, where: Where, now: datetime | None
) -> list[ConsentRecord]:
    rows = _validated(data, kind, ConsentRow, now or datetime.now(UTC), where)
    _refuse_repeats(where, rows, {"record_id": lambda row: [row.record_id]})
    return [row.to_record(hasher) for _, row in rows]


RowT = TypeVar("RowT", bound=_Row)


def _validated(
    data: bytes, kind: ImportFormat, schema: type[RowT], now: datetime, where: Where
) -> list[tuple[int, RowT]]:
    """(line, row) of every row, or ImportRowError with every problem."""
    text = _decoded(data, where)
    problems: list[str] = []
    if kind is ImportFormat.CSV:
        raw_rows = _csv_rows(where, text, schema, problems)
    else:
        raw_rows = _jsonl_rows(where, text, problems)
    rows: list[tuple[int, RowT]] = []
    for line, raw in raw_rows:
        try:
            rows.append((line, schema.model_validate(raw, context={"now": now})))
        except ValidationError as exc:
            problems.extend(f"{where(line)}: {_describe(error)}" for error in exc.errors())
    if problems:
        raise ImportRowError(problems)
    if not rows:
        raise ImportRowError([f"{where(None)}: no rows to import"])
    return rows


def _refuse_repeats(
    where: Where,
    rows: list[tuple[int, RowT]],
    unique: dict[str, Callable[[RowT], list[str]]],
) -> None:
    """ImportRowError for values that must be unique in the file, named where they repeat."""
    found: list[tuple[int, str]] = []
    for name, values in unique.items():
        first: dict[str, int] = {}
        for line, row in rows:
            for value in values(row):
                if value in first:
                    found.append((line, f"{name}: {value!r} already given on line {first[value]}"))
                else:
                    first[value] = line
    if found:
        raise ImportRowError([f"{where(line)}: {problem}" for line, problem in sorted(found)])


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportRowError([f"{path}: cannot read the file: {exc.strerror}"]) from None


def _decoded(data: bytes, where: Where) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRowError([f"{where(line)}: not UTF-8 text"]) from None


def _csv_rows(
    where: Where, text: str, schema: type[_Row], problems: list[str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as {column: value} with empty cells left out; none (and problems) when the header
    is unusable, since every row would then repeat the same problem."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    previous_end = 0
    try:
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if any(cell.strip() for cell in record):
                records.append((start, record))
    except csv.Error as exc:
        problems.append(f"{where(reader.line_num)}: unreadable CSV: {exc}")
        return iter(())
    if not records:
        return iter(())
    header_line, header = records[0]
    columns = [name.strip().lower() for name in header]
    fields = schema.model_fields
    at_header = where(header_line)
    header_problems = [
        f"{at_header}: unknown column {name!r} (columns: {', '.join(fields)})"
        for name in dict.fromkeys(columns)
        if name not in fields
    ]
    header_problems += [
        f"{at_header}: column {name!r} appears more than once"
        for name in dict.fromkeys(columns)
        if columns.count(name) > 1
    ]
    header_problems += [
        f"{at_header}: required column {name!r} is missing"
        for name, field in fields.items()
        if field.is_required() and name not in columns
    ]
    header_problems += [
        f"{at_header}: one of the columns {' or '.join(map(repr, names))} is required"
        for names in schema.one_of_columns
        if not any(name in columns for name in names)
    ]
    if header_problems:
        problems.extend(header_problems)
        return iter(())

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, record in records[1:]:
            if len(record) != len(columns):
                problems.append(
                    f"{where(line)}: {len(record)} values, but the header has"
                    f" {len(columns)} columns"
                )
                continue
            yield (
                line,
                {
                    name: cell.strip()
                    for name, cell in zip(columns, record, strict=True)
                    if cell.strip()
                },
            )

    return rows()


def _jsonl_rows(
    where: Where, text: str, problems: list[str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object per line; null values are left out (as absent)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where(number)}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            problems.append(f"{where(number)}: expected a JSON object, got {type(value).__name__}")
            continue
        yield number, {key: item for key, item in value.items() if item is not None}


def _describe(error: Any) -> str:
    """`field: problem` for one pydantic error."""
    location = ""
    for part in error["loc"]:
        if isinstance(part, int):
            location += f"[{part}]"
        elif not str(part).startswith(("function-", "lax-", "json-")) and "[" not in str(part):
            location += f".{part}" if location else str(part)
    kind = error["type"]
    if kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    else:
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        value = error.get("input")
        if kind != "value_error" and isinstance(value, str) and len(value) <= 80:
            message += f" (got {value!r})"
    return f"{location}: {message}" if location else message


# -- exports -----------------------------------------------------------------------------------

# The columns of a suppression export, in the import format (SuppressionRow's fields).
SUPPRESSION_COLUMNS = (
    "address",
    "address_hash",
    "sender_id",
    "scope",
    "list_id",
    "reason",
    "source",
    "received_at",
    "source_message_id",
)


def suppression_export_row(entry: SuppressionEntry) -> dict[str, str | None]:
    """`entry` as an import row: by its clear address where kept, else by its keyed hash."""
    return {
        "address": entry.address,
        "address_hash": None if entry.address else entry.address_hash,
        "sender_id": entry.sender_id,
        "scope": entry.scope.value,
        "list_id": entry.list_id,
        "reason": entry.reason.value,
        "source": entry.source,
        "received_at": entry.received_at.isoformat(),
        "source_message_id": entry.source_message_id,
    }
