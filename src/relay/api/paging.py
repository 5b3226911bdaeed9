"""Opaque cursors of the admin API's listings: a page ends with `next_cursor`, the client
passes it back as `cursor` and gets the page after, found by an index seek from that key (never
an offset scan)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from fastapi import HTTPException

__all__ = ["Cursor"]


class Cursor:
    """Opaque page cursors: the last key of a page as base64url JSON."""

    @staticmethod
    def encode(key: Sequence[str]) -> str:
        text = json.dumps(list(key), separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @staticmethod
    def decode(cursor: str, parts: int) -> list[str]:
        """The key a cursor names; 422 for anything this API did not give out."""
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            key = json.loads(text)
        except (binascii.Error, ValueError):
            key = None
        if (
            not isinstance(key, list)
            or len(key) != parts
            or not all(isinstance(part, str) for part in key)
        ):
            raise HTTPException(
                422, "query.cursor: not a cursor of this listing (pass next_cursor as given)"
            )
        return key
