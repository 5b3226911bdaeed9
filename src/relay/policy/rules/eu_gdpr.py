"""European Union: GDPR, ePrivacy Directive Art. 13, E-Commerce Directive (COMPLIANCE §3)."""

from __future__ import annotations
