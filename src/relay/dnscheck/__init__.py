"""Sender-domain readiness (`relay dns-check DOMAIN`; MBP-SPF-PASS, MBP-DKIM-ALIGNED,
MBP-DMARC-RECORD, RFC-DMARC-ALIGN, RFC-NULLMX): does DNS let relay send as DOMAIN?

`check_domain` returns a frozen `DomainReadiness`, one `Check` per item (mx, spf,
dkim:<selector>, dmarc, alignment) with status pass | fail | missing | temperror | unknown, a
one-line detail and the DNS answers it read; policy rules read its fields and cache it.

How the work is split between dnspython and checkdmarc:

* Every lookup whose outcome decides a status goes through relay's own dnspython resolver
  (`relay.dnsresolver.build_resolver`, the one delivery uses: `[dns] nameservers` with their
  ports, `[dns] timeout`), asynchronously, in `relay.dnscheck.lookup`. checkdmarc could reach
  the same servers — its `nameservers=` argument passes dnspython `Nameserver` objects through,
  so `Do53Nameserver(host, port)` works on any port, and it takes a `resolver=` too — but it
  cannot be the source of the verdicts: it is synchronous; it folds temporary failures into
  "not found" (a timeout on the SPF TXT query raises SPFRecordNotFound, a failing a/mx lookup
  inside a record becomes a warning), where readiness must say temperror and never missing;
  it does not evaluate SPF for an address (its parser resolves include/a/mx but keeps no MX
  host addresses); and it keeps a process-wide 30-minute answer cache keyed without the name
  server, which would hide DNS changes from a long-running relay.
* checkdmarc parses the record strings relay fetched (`relay.dnscheck.validation`, in a worker
  thread, with the same name servers and timeout for its own few lookups): DMARC tag parsing
  and validation (RFC 9989 defaults, invalid values, report destinations) and the SPF syntax
  and lookup-limit verdict with its advice. Its Public Suffix List guess is used for the
  organisational domain only where the RFC 9989 tree walk finds no DMARC record at all.
* relay evaluates SPF check_host() per egress address (relay.dnscheck.spf), walks the DMARC
  tree (relay.dnscheck.dmarc) and compares DKIM key records (relay.dnscheck.dkim) itself.
"""

from relay.dnscheck.check import check_domain, check_mx, signing_keys
from relay.dnscheck.model import Answer, Check, DmarcPolicy, DomainReadiness, Status, worst

__all__ = [
    "Answer",
    "Check",
    "DmarcPolicy",
    "DomainReadiness",
    "Status",
    "check_domain",
    "check_mx",
    "signing_keys",
    "worst",
]
