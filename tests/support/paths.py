"""Where the shared test data lives: ../shared/corpus beside the checkout (never copied in)."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
