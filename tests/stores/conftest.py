"""The store tests run on both backends: `place` is a SQLite file or a key prefix of its own in
the session's redis-server."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.stores.helpers import RedisPlace
from tests.support.redis_server import RedisServer

_prefixes = itertools.count(1)


@pytest.fixture(params=["sqlite", "redis"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Path | RedisPlace:
    path = tmp_path / "state" / "stores.sqlite"
    if request.param == "sqlite":
        return path
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisPlace(server.url, f"test{next(_prefixes)}:{request.node.name}:", path)
