"""`relay serve` and its HTTP listener: an address in use stops start-up with the operator
message the SMTP listener gives, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.support.network import free_port


def test_http_port_in_use_stops_start_up_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "relay", "serve"],
            cwd=tmp_path,
            env={
                **os.environ,
                "RELAY_SMTP__LISTEN": f"127.0.0.1:{free_port()}",
                "RELAY_FEEDBACK__LISTEN": f"127.0.0.1:{free_port()}",
                "RELAY_HTTP__LISTEN": f"127.0.0.1:{port}",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert (
        f"cannot listen on 127.0.0.1:{port} ([http] listen): Address already in use"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
