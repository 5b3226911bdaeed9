"""Import bodies of the admin API (suppressions, consent records): CSV with a header row or
JSON Lines, as the request's Content-Type says, at most `[http] max_import_size` octets; the
rows are checked by relay.stores.importing exactly as the CLI's import files are."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from relay.stores.importing import ImportFormat

__all__ = ["IMPORT_BODY", "import_format", "read_import_body"]


# The media types of an import body and the format each names.
IMPORT_TYPES = {
    "text/csv": ImportFormat.CSV,
    "application/x-ndjson": ImportFormat.JSONL,
    "application/jsonl": ImportFormat.JSONL,
    "application/json-lines": ImportFormat.JSONL,
}


def import_format(request: Request) -> ImportFormat:
    """The format the request's Content-Type names; 415 for any other."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        return IMPORT_TYPES[media_type]
    except KeyError:
        raise HTTPException(
            415,
            f"Content-Type {media_type or '(none)'!r}: send text/csv (with a header row) or"
            " application/x-ndjson (JSON Lines)",
        ) from None


async def read_import_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (413 past it, before more is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if not body.strip():
        raise HTTPException(422, "body: empty; send the rows to import")
    return bytes(body)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"body: larger than {limit} octets ([http] max_import_size); split the import into parts",
    )


# The request body as OpenAPI describes it (FastAPI cannot infer a raw body's media types).
IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}
