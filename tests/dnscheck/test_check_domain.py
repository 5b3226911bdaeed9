"""check_domain() in process, against the real NSD fixture: SPF evaluation (include, redirect,
a, mx, the lookup limit, IPv6), no egress addresses, and the result type the policy rules
read."""

from __future__ import annotations

import asyncio
import dataclasses
from ipaddress import ip_address

import pytest

from relay.config.model import DnsSettings
from relay.dnscheck import DomainReadiness, check_domain
from relay.signing.keys import KeyRing
from tests.support.dns_server import txt


def run(dns_server, domain, egress=("127.0.0.1",), **kwargs) -> DomainReadiness:
    settings = DnsSettings.model_validate({"nameservers": [dns_server.address], "timeout": 2})
    return asyncio.run(
        check_domain(
            domain,
            dns=settings,
            keyring=KeyRing(),
            egress=[ip_address(address) for address in egress],
            **kwargs,
        )
    )


def spf(dns_server, domain, *records, egress=("127.0.0.1",)):
    dns_server.add(*records)
    check = run(dns_server, domain, egress).check("spf")
    assert check is not None
    return check


def test_include_chain_a_and_mx_mechanisms_authorise(dns_server):
    domain = "spf-chain.test"
    check = spf(
        dns_server,
        domain,
        txt(domain, f"v=spf1 include:_a.{domain} include:_mx.{domain} -all"),
        txt(f"_a.{domain}", f"v=spf1 a:out.{domain}/30 ~all"),
        f"out.{domain}. IN A 127.0.0.2",
        txt(f"_mx.{domain}", f"v=spf1 mx:{domain} -all"),
        f"{domain}. IN MX 10 mx.{domain}.",
        f"mx.{domain}. IN AAAA ::1",
        egress=("127.0.0.1", "::1"),
    )
    assert check.status == "pass", check.detail
    assert check.detail.startswith("127.0.0.1, ::1 authorised by v=spf1 include:")
    names = {(answer.name, answer.rdtype) for answer in check.answers}
    assert (f"out.{domain}", "A") in names
    assert (f"mx.{domain}", "AAAA") in names


def test_redirect_is_followed(dns_server):
    domain = "spf-redirect.test"
    check = spf(
        dns_server,
        domain,
        txt(domain, f"v=spf1 ip4:192.0.2.1 redirect=_spf.{domain}"),
        txt(f"_spf.{domain}", "v=spf1 ip4:127.0.0.1 -all"),
    )
    assert check.status == "pass", check.detail


def test_softfail_and_neutral_are_not_authorisation(dns_server):
    soft = spf(dns_server, "spf-soft.test", txt("spf-soft.test", "v=spf1 ~all"))
    assert soft.status == "fail"
    assert "127.0.0.1 softfail (~all in spf-soft.test)" in soft.detail
    neutral = spf(dns_server, "spf-neutral.test", txt("spf-neutral.test", "v=spf1 ip4:10.0.0.1"))
    assert neutral.status == "fail"
    assert "neutral" in neutral.detail


def test_more_than_ten_lookups_is_a_permanent_error(dns_server):
    domain = "spf-deep.test"
    records = [txt(f"l{n}.{domain}", f"v=spf1 include:l{n + 1}.{domain} -all") for n in range(11)]
    records.append(txt(f"l11.{domain}", "v=spf1 ip4:127.0.0.1 -all"))
    check = spf(dns_server, domain, txt(domain, f"v=spf1 include:l0.{domain} -all"), *records)
    assert check.status == "fail"
    assert "permerror" in check.detail
    assert "10" in check.detail


def test_missing_include_target_is_a_permanent_error(dns_server):
    domain = "spf-noinclude.test"
    check = spf(dns_server, domain, txt(domain, f"v=spf1 include:gone.{domain} -all"))
    assert check.status == "fail"
    assert f"include target gone.{domain} has no SPF record" in check.detail


def test_syntax_error_fails(dns_server):
    domain = "spf-syntax.test"
    check = spf(dns_server, domain, txt(domain, "v=spf1 ip4:127.0.0.1 bogus:thing -all"))
    assert check.status == "fail"


def test_no_egress_addresses_is_unknown(dns_server):
    domain = "spf-noegress.test"
    dns_server.add(txt(domain, "v=spf1 ip4:127.0.0.1 -all"))
    readiness = run(dns_server, domain, egress=())
    check = readiness.check("spf")
    assert check is not None
    assert check.status == "unknown"
    assert "no egress addresses configured" in check.detail


def test_result_is_frozen_and_rules_can_read_it(dns_server):
    domain = "rules-view.test"
    dns_server.add(
        f"{domain}. IN MX 10 mx.{domain}.",
        txt(domain, "v=spf1 ip4:127.0.0.1 -all"),
        txt(f"_dmarc.{domain}", "v=DMARC1; p=quarantine; aspf=s"),
    )
    readiness = run(dns_server, domain, verp_domain=f"bounce.{domain}")
    assert readiness.envelope_domain == f"bounce.{domain}"
    assert readiness.dmarc is not None
    assert (readiness.dmarc.p, readiness.dmarc.aspf) == ("quarantine", "s")
    assert readiness.spf_aligned is False  # strict: bounce.rules-view.test != rules-view.test
    assert readiness.dkim_domain is None
    assert readiness.status_of("dkim") == "missing"
    assert readiness.status_of("dmarc") == "pass"
    assert readiness.status_of("spf") == "missing"  # the VERP domain publishes none
    assert readiness.status_of("mx") == "fail"  # ... and does not exist
    assert readiness.ready is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        readiness.domain = "other.test"


def test_invalid_dmarc_record_and_one_without_p_fail(dns_server):
    dns_server.add(
        txt("_dmarc.dmarc-bogus.test", "v=DMARC1; p=bogus"),
        txt("_dmarc.dmarc-nop.test", "v=DMARC1; adkim=s"),
    )
    bogus = run(dns_server, "dmarc-bogus.test").check("dmarc")
    assert bogus is not None
    assert bogus.status == "fail"
    assert "not bogus" in bogus.detail  # checkdmarc's reason
    no_p = run(dns_server, "dmarc-nop.test")
    dmarc = no_p.check("dmarc")
    assert dmarc is not None
    assert dmarc.status == "fail"
    assert "no p= tag" in dmarc.detail
    assert no_p.dmarc is not None
    assert no_p.dmarc.adkim == "s"
