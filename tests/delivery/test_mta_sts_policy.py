"""MTA-STS policy files (RFC 8461 §3.2) and MX patterns (§4.1), table-driven."""

from __future__ import annotations

import pytest

from relay.delivery.mta_sts import PolicyError, PolicyMode, StsPolicy, mx_matches, parse_policy

ENFORCE = (
    "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.backup.example\nmax_age: 86400\n"
)


def test_a_policy_is_parsed_with_every_mx_line():
    policy = parse_policy(ENFORCE.replace("\n", "\r\n"), "20261123")
    assert policy == StsPolicy(
        PolicyMode.ENFORCE, ("mail.example.com", "*.backup.example"), 86400, "20261123"
    )
    assert policy.allows("MAIL.example.com.")
    assert policy.allows("mx1.backup.example")
    assert not policy.allows("mail.example.org")


def test_max_age_is_capped_at_a_year():
    assert parse_policy(ENFORCE.replace("86400", "99999999")).max_age == 31_557_600


def test_mode_none_needs_no_mx():
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 60\n").mode is PolicyMode.NONE


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ENFORCE.replace("STSv1", "STSv2"), "version must be STSv1"),
        (ENFORCE.replace("version: STSv1\n", ""), "version must be STSv1"),
        (ENFORCE.replace("enforce", "strict"), "mode must be"),
        (ENFORCE.replace("max_age: 86400", "max_age: -1"), "max_age must be"),
        (ENFORCE.replace("max_age: 86400\n", ""), "max_age must be"),
        ("version: STSv1\nmode: enforce\nmax_age: 60\n", "at least one mx"),
        ("version: STSv1\nmode enforce\n", "is not key: value"),
        ("<html>moved</html>", "is not key: value"),
    ],
)
def test_invalid_policies_are_refused(text, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(text)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "Mail.Example.COM.", True),
        ("mail.example.com", "mx.example.com", False),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "example.com", False),  # the wildcard is one whole label
        ("*.example.com", "a.b.example.com", False),  # ... and only one
        ("*.example.com", "mx1.example.com.evil", False),
        ("*.example.com", ".example.com", False),
        ("mx.*.example.com", "mx.a.example.com", False),  # only the leftmost label may be *
    ],
)
def test_mx_patterns(pattern, host, matches):
    assert mx_matches(pattern, host) is matches
