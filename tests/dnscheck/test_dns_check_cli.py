"""`relay dns-check DOMAIN` against a real DNS server (NSD on a loopback port): good, missing
and wrong SPF/DKIM/DMARC records, null MX, DMARC alignment, and temporary DNS failures."""

from __future__ import annotations

import socket

from tests.dnscheck.helpers import (
    dns_check,
    json_report,
    make_key,
    publish_key,
)
from tests.support.dns_server import txt


def test_good_domain_passes_everything_and_exits_0(tmp_path, dns_server):
    domain = "ready-good.test"
    made = make_key(tmp_path, domain, "s2026")
    dns_server.add(
        f"{domain}. IN MX 10 mx.{domain}.",
        f"mx.{domain}. IN A 127.0.0.1",
        txt(domain, "v=spf1 ip4:127.0.0.0/8 -all"),
        txt(f"_dmarc.{domain}", "v=DMARC1; p=none; rua=mailto:dmarc@ready-good.test"),
    )
    publish_key(dns_server, made)

    human = dns_check(tmp_path, domain, nameserver=dns_server.address, keys=[made.key_entry()])

    assert human.returncode == 0, human.stdout + human.stderr
    lines = human.lines()
    assert list(lines) == ["mx", "spf", "dkim:s2026", "dmarc", "alignment"], human.stdout
    assert {status for status, _ in lines.values()} == {"PASS"}, human.stdout
    assert lines["spf"][1] == "127.0.0.1 authorised by v=spf1 ip4:127.0.0.0/8 -all"
    assert lines["mx"][1] == f"MX 10 mx.{domain}."
    assert f"s2026._domainkey.{domain} publishes the rsa-sha256 key" in lines["dkim:s2026"][1]
    assert "v=DMARC1; p=none" in lines["dmarc"][1]
    assert f"d={domain} aligned with From {domain}" in lines["alignment"][1]
    assert human.stdout.rstrip().endswith(f"{domain}: ready")

    as_json = dns_check(
        tmp_path,
        domain,
        nameserver=dns_server.address,
        keys=[made.key_entry()],
        options=("--json",),
    )
    assert as_json.returncode == 0, as_json.stderr
    report = as_json.json()
    assert report["domain"] == domain
    assert report["ready"] is True
    assert report["status"] == "pass"
    assert report["dkim_domain"] == domain
    assert report["dkim_aligned"] is True
    assert report["spf_aligned"] is True
    assert report["dmarc"]["p"] == "none"
    assert report["dmarc"]["adkim"] == "r"
    checks = {check["name"]: check for check in report["checks"]}
    assert [check["status"] for check in checks.values()] == ["pass"] * 5
    spf_answers = {(a["name"], a["type"]): a for a in checks["spf"]["answers"]}
    assert spf_answers[(domain, "TXT")]["records"] == ["v=spf1 ip4:127.0.0.0/8 -all"]
    dkim_answer = checks["dkim:s2026"]["answers"][0]
    assert dkim_answer["name"] == made.record_name
    assert dkim_answer["records"] == [made.record_value]  # the split strings, joined again
    assert checks["dmarc"]["answers"][0]["name"] == f"_dmarc.{domain}"


def test_missing_spf_dkim_and_dmarc_are_missing_and_exit_1(tmp_path, dns_server):
    domain = "ready-bare.test"
    made = make_key(tmp_path, domain, "s2026")
    dns_server.add(f"{domain}. IN A 127.0.0.1")  # no MX: the implicit MX takes the bounces

    report = json_report(
        tmp_path,
        domain,
        nameserver=dns_server.address,
        keys=[made.key_entry()],
        exit_status=1,
    )
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses == {
        "mx": "pass",
        "spf": "missing",
        "dkim:s2026": "missing",
        "dmarc": "missing",
        "alignment": "pass",
    }
    details = {check["name"]: check["detail"] for check in report["checks"]}
    assert details["mx"] == "no MX; implicit MX 127.0.0.1"
    assert details["spf"] == f"{domain} publishes no SPF record"
    assert made.record_value in details["dkim:s2026"]  # says what to publish
    assert f"_dmarc.{domain}" in details["dmarc"]
    assert report["ready"] is False


def test_no_key_configured_is_missing(tmp_path, dns_server):
    domain = "ready-nokey.test"
    dns_server.add(
        f"{domain}. IN MX 10 mx.{domain}.",
        txt(domain, "v=spf1 ip4:127.0.0.1 -all"),
        txt(f"_dmarc.{domain}", "v=DMARC1; p=reject"),
    )

    outcome = dns_check(tmp_path, domain, nameserver=dns_server.address, keys=[])

    assert outcome.returncode == 1
    lines = outcome.lines()
    assert lines["dkim"][0] == "MISSING"
    assert lines["alignment"][0] == "FAIL"
    assert lines["spf"][0] == lines["dmarc"][0] == lines["mx"][0] == "PASS"


def test_wrong_spf_and_dkim_records_fail(tmp_path, dns_server):
    domain = "ready-wrong.test"
    made = make_key(tmp_path, domain, "s2026")
    other = make_key(tmp_path, "ready-other.test", "s2026")
    revoked = make_key(tmp_path, domain, "ed2026", "--algorithm", "ed25519-sha256")
    dns_server.add(
        f"{domain}. IN MX 10 mx.{domain}.",
        txt(domain, "v=spf1 ip4:192.0.2.0/24 -all"),
        txt(f"_dmarc.{domain}", "v=DMARC1; p=quarantine"),
        txt(made.record_name, other.record_value),  # another key's record
        txt(revoked.record_name, "v=DKIM1; k=ed25519; p="),  # revoked
    )

    outcome = dns_check(
        tmp_path,
        domain,
        nameserver=dns_server.address,
        keys=[made.key_entry(), revoked.key_entry("ed25519-sha256")],
    )

    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    lines = outcome.lines()
    assert lines["spf"][0] == "FAIL"
    assert "127.0.0.1 fail (-all in ready-wrong.test)" in lines["spf"][1]
    assert lines["dkim:s2026"][0] == "FAIL"
    assert "different public key" in lines["dkim:s2026"][1]
    assert lines["dkim:ed2026"][0] == "FAIL"
    assert "revoked" in lines["dkim:ed2026"][1]
    assert lines["dmarc"][0] == lines["mx"][0] == lines["alignment"][0] == "PASS"
    assert outcome.stdout.rstrip().endswith(f"{domain}: not ready")


def test_strict_dkim_alignment_with_a_key_of_the_parent_domain_fails(tmp_path, dns_server):
    # Mail From: news.ready-strict.test, signed d=ready-strict.test; the DMARC record is found
    # by the tree walk at the organisational domain and asks for strict DKIM alignment.
    parent = "ready-strict.test"
    domain = f"news.{parent}"
    made = make_key(tmp_path, parent, "s2026")
    dns_server.add(
        f"{domain}. IN MX 10 mx.{parent}.",
        txt(domain, f"v=spf1 include:_spf.{parent} -all"),
        txt(f"_spf.{parent}", "v=spf1 ip4:127.0.0.1 -all"),
        txt(f"_dmarc.{parent}", "v=DMARC1; p=reject; adkim=s"),
    )
    publish_key(dns_server, made)

    outcome = dns_check(tmp_path, domain, nameserver=dns_server.address, keys=[made.key_entry()])

    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    lines = outcome.lines()
    assert lines["alignment"][0] == "FAIL"
    assert f"d={parent} not aligned with From {domain} (adkim=s)" in lines["alignment"][1]
    assert lines["dmarc"][0] == "PASS"
    assert f"_dmarc.{parent} (organisational domain {parent})" in lines["dmarc"][1]
    assert lines["dkim:s2026@ready-strict.test"][0] == "PASS"
    assert lines["spf"][0] == lines["mx"][0] == "PASS"
    assert lines["spf"][1] == f"127.0.0.1 authorised by v=spf1 include:_spf.{parent} -all"


def test_relaxed_alignment_with_a_key_of_the_parent_domain_passes(tmp_path, dns_server):
    parent = "ready-relaxed.test"
    domain = f"news.{parent}"
    made = make_key(tmp_path, parent, "s2026")
    dns_server.add(
        f"{domain}. IN MX 10 mx.{parent}.",
        txt(domain, "v=spf1 ip4:127.0.0.1 -all"),
        txt(f"_dmarc.{parent}", "v=DMARC1; p=reject"),
    )
    publish_key(dns_server, made)

    report = json_report(
        tmp_path,
        domain,
        nameserver=dns_server.address,
        keys=[made.key_entry()],
        exit_status=0,
    )
    assert report["dkim_domain"] == parent
    assert report["dmarc"]["organisational_domain"] == parent
    assert report["dmarc"]["record_domain"] == parent
    assert {check["status"] for check in report["checks"]} == {"pass"}


def test_null_mx_fails(tmp_path, dns_server):
    domain = "ready-nullmx.test"
    made = make_key(tmp_path, domain, "s2026")
    dns_server.add(
        f"{domain}. IN MX 0 .",
        f"{domain}. IN A 127.0.0.1",  # not an implicit MX: the null MX says no mail
        txt(domain, "v=spf1 ip4:127.0.0.1 -all"),
        txt(f"_dmarc.{domain}", "v=DMARC1; p=none"),
    )
    publish_key(dns_server, made)

    outcome = dns_check(tmp_path, domain, nameserver=dns_server.address, keys=[made.key_entry()])

    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    lines = outcome.lines()
    assert lines["mx"][0] == "FAIL"
    assert "null MX (RFC 7505)" in lines["mx"][1]
    assert {lines[name][0] for name in ("spf", "dkim:s2026", "dmarc", "alignment")} == {"PASS"}


def test_unanswering_name_server_is_temperror_and_exits_3(tmp_path):
    made = make_key(tmp_path, "ready-timeout.test", "s2026")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives the queries and never answers
        port = silent.getsockname()[1]
        human = dns_check(
            tmp_path,
            "ready-timeout.test",
            nameserver=f"127.0.0.1:{port}",
            keys=[made.key_entry()],
            timeout=0.3,
        )
        as_json = dns_check(
            tmp_path,
            "ready-timeout.test",
            nameserver=f"127.0.0.1:{port}",
            keys=[made.key_entry()],
            timeout=0.3,
            options=("--json",),
        )

    assert human.returncode == 3, human.stdout + human.stderr
    lines = human.lines()
    assert list(lines) == ["mx", "spf", "dkim:s2026", "dmarc", "alignment"]
    assert {status for status, _ in lines.values()} == {"TEMPERROR"}, human.stdout
    assert "timed out" in lines["spf"][1] or "lifetime" in lines["spf"][1], lines["spf"]
    assert human.stdout.rstrip().endswith("DNS failed temporarily; try again")
    assert as_json.returncode == 3
    report = as_json.json()
    assert report["status"] == "temperror"
    assert {check["status"] for check in report["checks"]} == {"temperror"}
    assert report["dkim_aligned"] is None


def test_refusing_name_server_is_temperror_not_missing(tmp_path, dns_server):
    # NSD serves only test. and example.: anything else gets REFUSED, like a broken resolver.
    made = make_key(tmp_path, "ready-refused.invalid", "s2026")

    outcome = dns_check(
        tmp_path,
        "ready-refused.invalid",
        nameserver=dns_server.address,
        keys=[made.key_entry()],
        options=("--json",),
    )

    assert outcome.returncode == 3, outcome.stdout + outcome.stderr
    statuses = {check["name"]: check["status"] for check in outcome.json()["checks"]}
    assert set(statuses.values()) == {"temperror"}, statuses


def test_temperror_does_not_hide_a_failure(tmp_path, dns_server):
    # SPF cannot be evaluated (its include is refused by the server) but the DKIM record is
    # wrong: not ready (exit 1), not "try again" (exit 3).
    domain = "ready-partial.test"
    made = make_key(tmp_path, domain, "s2026")
    other = make_key(tmp_path, "ready-other2.test", "s2026")
    dns_server.add(
        f"{domain}. IN MX 10 mx.{domain}.",
        txt(domain, "v=spf1 include:_spf.elsewhere.invalid -all"),
        txt(f"_dmarc.{domain}", "v=DMARC1; p=none"),
        txt(made.record_name, other.record_value),
    )

    outcome = dns_check(tmp_path, domain, nameserver=dns_server.address, keys=[made.key_entry()])

    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    lines = outcome.lines()
    assert lines["spf"][0] == "TEMPERROR"
    assert "_spf.elsewhere.invalid" in lines["spf"][1]
    assert lines["dkim:s2026"][0] == "FAIL"


def test_config_errors_exit_2(tmp_path, dns_server):
    outcome = dns_check(
        tmp_path,
        "ready-good.test",
        nameserver=dns_server.address,
        keys=[],
        egress=["not-an-address"],
    )
    assert outcome.returncode == 2
    assert "egress_addresses" in outcome.stderr
    assert "not an IPv4 or IPv6 address" in outcome.stderr

    missing_key = {
        "domain": "ready-good.test",
        "selector": "s1",
        "private_key": str(tmp_path / "absent.pem"),
    }
    outcome = dns_check(
        tmp_path, "ready-good.test", nameserver=dns_server.address, keys=[missing_key]
    )
    assert outcome.returncode == 2
    assert "dkim.keys[0].private_key" in outcome.stderr
