"""United States: CAN-SPAM (15 U.S.C. 7701-7713) and 16 CFR Part 316 (COMPLIANCE §2)."""

from __future__ import annotations
