"""The malformed and hard MIME corpus (/work/shared/corpus/mime): every message submitted over
SMTP is either accepted and delivered with its content intact (relay adds only its Received
header), or refused with a 5xx and an enhanced status code. Never a 4xx, a hang, a traceback, or
an accepted message that does not arrive.

One relay and one sink serve the whole module; each message is told apart by its queue id.
"""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from relay.policy.files import policy_paths
from tests.support.dns_server import txt
from tests.support.paths import CORPUS
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess
from tests.support.sink import Sink, SinkMessage

EML = CORPUS / "mime" / "eml"
FILES = sorted(path.name for path in EML.iterdir()) if EML.is_dir() else []
QUEUED = re.compile(rb"^2\.0\.0 Queued as (\S+)")
ENHANCED_5XX = re.compile(rb"^5\.\d{1,3}\.\d{1,3} ")
MAX_LINE = 998  # RFC 5322 §2.1.1 / RFC 5321 §4.5.3.1.6: 1000 octets with the CRLF


def longest_line(data: bytes) -> int:
    return max(len(line) for line in data.split(b"\r\n"))


def decoded_parts(data: bytes) -> list[tuple[str, bytes]]:
    """Each leaf part's type and decoded payload, line endings normalised."""
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    return [
        (part.get_content_type(), (part.get_payload(decode=True) or b"").replace(b"\r\n", b"\n"))
        for part in message.walk()
        if not part.is_multipart()
    ]


def test_corpus_is_present():
    """The corpus lives in ../shared beside the checkout; without it nothing below would run."""
    assert len(FILES) > 50, f"no MIME corpus at {EML}"


@pytest.fixture(scope="module")
def corpus_sink() -> Iterator[Sink]:
    sink = Sink().start()
    yield sink
    sink.stop()


POLICIES = {
    "no-policies": [],  # relay as a plain MTA: everything is delivered or refused by ingest
    "shipped-policies": [str(path) for path in policy_paths(None)],  # every rule parses it
}


@pytest.fixture(scope="module", params=sorted(POLICIES))
def corpus_relay(request, tmp_path_factory, dns_server, corpus_sink) -> Iterator[RelayProcess]:
    route = f"[127.0.0.1]:{corpus_sink.port}"
    if request.param == "shipped-policies":  # the envelope domain passes MBP-SPF-PASS
        dns_server.add(txt("sender.test", "v=spf1 ip4:127.0.0.1 -all"))
    relay = RelayProcess(
        tmp_path_factory.mktemp("corpus-relay"),
        {
            "dns": {"nameservers": [dns_server.address], "timeout": 2},
            "delivery": {
                "routes": {"dest.test": route, "sender.test": route},
                "egress_addresses": ["127.0.0.1"],
            },
            "policy": {"files": POLICIES[request.param]},
        },
    )
    relay.start()
    yield relay
    relay.stop()
    relay.assert_no_traceback()
    verified = subprocess.run(
        [sys.executable, "-m", "relay", "audit", "verify", "--config", str(relay.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr


def outcome_line(relay: RelayProcess, queue_id: str, timeout: float = 20.0) -> str:
    """The first final outcome relay logs for the message (delivered or bounced)."""
    pattern = re.compile(rf"{re.escape(queue_id)}: to=<[^>]*> relay=\S* status=(\S+).*")

    def final_outcome() -> str | None:
        finals = [m for m in pattern.finditer(relay.log) if m.group(1) != "deferred"]
        return finals[0].group(0) if finals else None

    outcome = poll(final_outcome, timeout)
    assert outcome, f"{queue_id}: no final outcome within {timeout}s:\n{relay.log[-3000:]}"
    return outcome


def delivered(sink: Sink, queue_id: str) -> SinkMessage:
    marker = f" id {queue_id}".encode()

    def arrived() -> list[SinkMessage] | None:
        found = [m for m in list(sink.messages) if marker in m.data.split(b"\r\n\r\n", 1)[0]]
        return found or None

    found = poll(arrived, 10)
    assert found, f"{queue_id}: relay logged delivery but the sink has no such message"
    assert len(found) == 1, f"{queue_id} delivered {len(found)} times"
    return found[0]


@pytest.mark.parametrize("name", FILES)
def test_corpus_message_is_delivered_intact_or_refused_with_5xx(corpus_relay, corpus_sink, name):
    submitted = re.sub(rb"\r?\n", b"\r\n", (EML / name).read_bytes())
    # smtplib terminates the last line before the final dot.
    expected = submitted if submitted.endswith(b"\r\n") else submitted + b"\r\n"
    with corpus_relay.smtp() as client:
        client.ehlo("client.test")
        code, text = client.mail("mailer@sender.test", ["SMTPUTF8", f"SIZE={len(expected)}"])
        assert code == 250, text
        code, text = client.rcpt("inbox@dest.test")
        assert code == 250, text
        code, text = client.data(submitted)
        client.quit()
    assert not 400 <= code < 500, f"{name}: temporary refusal {code} {text!r}"
    if code >= 500:
        assert ENHANCED_5XX.match(text), f"{name}: {code} {text!r} has no enhanced code"
        assert "Traceback" not in corpus_relay.log
        return
    assert code == 250, text
    queued = QUEUED.match(text)
    assert queued, text
    queue_id = queued.group(1).decode()
    outcome = outcome_line(corpus_relay, queue_id)
    assert "status=delivered" in outcome, f"{name}: accepted with 250, then {outcome}"
    message = delivered(corpus_sink, queue_id)
    assert message.rcpt_tos == ["inbox@dest.test"]
    assert message.data.startswith(b"Received: from client.test ")
    assert longest_line(message.data) <= MAX_LINE, f"{name}: relay emitted an over-long line"
    if longest_line(expected) > MAX_LINE:
        # COMPLIANCE RFC-5322-LINELEN: a long body line may be fixed by re-encoding its part
        # (quoted-printable); what the recipient decodes must not change.
        assert decoded_parts(message.data) == decoded_parts(expected), name
    else:
        assert message.data.endswith(expected), f"{name}: content changed on the way"
        # Nothing but the Received header was added in front of the submitted message.
        assert re.fullmatch(
            rb"Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n",
            message.data[: len(message.data) - len(expected)],
        ), message.data[:400]
    assert "Traceback" not in corpus_relay.log
