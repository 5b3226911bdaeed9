"""`relay serve` and its HTTP listener: an address in use stops start-up with the operator
message the SMTP listener gives, never a traceback."""

from __future__ import annotations

from tests.support.relay_process import serve_with_a_taken_port


def test_http_port_in_use_stops_start_up_with_a_clear_message(tmp_path):
    port, stderr, status = serve_with_a_taken_port(tmp_path, "HTTP")
    assert status == 1, stderr
    assert f"cannot listen on 127.0.0.1:{port} ([http] listen): Address already in use" in stderr
    assert "Traceback" not in stderr
