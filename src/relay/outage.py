"""A dependency that stopped answering (Redis, a store's file), logged once per incident: a
warning at the first failure saying what relay does meanwhile, an info line when it answers
again; the failures in between go to the debug log (each refusal is also in the audit log)."""

from __future__ import annotations

import logging
import time

__all__ = ["Outage"]


class Outage:
    def __init__(self, log: logging.Logger, what: str, meanwhile: str) -> None:
        self._log = log
        self._what = what  # "store lookups": plural, they fail and succeed
        self._meanwhile = meanwhile  # "MAIL and RCPT are answered 451 4.3.0"
        self._since: float | None = None
        self._failures = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, problem: object) -> None:
        if self._since is None:
            self._since = time.monotonic()
            self._failures = 0
            self._log.warning(
                "%s failing: %s; %s until they succeed again (logged once per outage)",
                self._what,
                problem,
                self._meanwhile,
            )
        else:
            self._log.debug("%s still failing: %s", self._what, problem)
        self._failures += 1

    def answered(self) -> None:
        if self._since is not None:
            self._log.warning(
                "%s succeed again after %.1fs (%d failed)",
                self._what,
                time.monotonic() - self._since,
                self._failures,
            )
            self._since = None
