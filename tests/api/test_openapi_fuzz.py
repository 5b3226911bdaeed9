"""schemathesis against the running relay's OpenAPI schema: generated requests (valid and
invalid) to every admin route, with an operator token; no answer may be a 5xx."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.api.admin import start_admin_api

SCHEMATHESIS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "schemathesis"


def test_no_generated_request_gets_a_server_error(make_relay, tmp_path):
    # Requests without a token are part of what is generated; they must not lock the token out.
    api = start_admin_api(make_relay({"http": {"failed_auth_limit": "100000/1m"}}))
    schema = httpx.get(f"{api.url}/openapi.json", timeout=30).json()
    operations = sum(len(methods) for methods in schema["paths"].values())
    assert operations >= 25, sorted(schema["paths"])
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {api.tokens['operator']}",
            "--max-examples",
            "15",
            "--seed",
            "20261123",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "30",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    events = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(events) > operations  # it did send requests to the routes
    assert " 5" not in "".join(
        line for line in api.relay.log.splitlines() if "Exception in ASGI" in line
    )
    api.relay.assert_no_traceback()
