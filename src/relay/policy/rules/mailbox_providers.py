"""Mailbox-provider sender requirements: Gmail, Yahoo, Microsoft (COMPLIANCE §7)."""

from __future__ import annotations
