"""People's Republic of China: Internet E-mail Measures, Advertising Law, PIPL (COMPLIANCE §4)."""

from __future__ import annotations
