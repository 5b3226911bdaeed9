"""Protocol rules from the RFCs (COMPLIANCE §8)."""

from __future__ import annotations
