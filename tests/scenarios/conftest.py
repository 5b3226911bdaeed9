"""The shop's sender domain, ready in the test DNS, shared by every story."""

from __future__ import annotations

import pytest

from tests.scenarios.compliance import EGRESS, SHOP_DOMAIN, ShopDomain
from tests.signing.conftest import keygen
from tests.support.dns_server import DnsServer, txt


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer) -> ShopDomain:
    directory = tmp_path_factory.mktemp("shop") / "keys"
    rsa = keygen(directory, SHOP_DOMAIN, "s2026")
    ed25519 = keygen(directory, SHOP_DOMAIN, "e2026", "--algorithm", "ed25519-sha256")
    dns_server.add(
        f"{SHOP_DOMAIN}. IN MX 10 mx.{SHOP_DOMAIN}.",
        f"mx.{SHOP_DOMAIN}. IN A 127.0.0.1",
        txt(SHOP_DOMAIN, f"v=spf1 ip4:{EGRESS} -all"),
        txt(f"_dmarc.{SHOP_DOMAIN}", "v=DMARC1; p=reject"),
        txt(rsa.record_name, rsa.record_value),
        txt(ed25519.record_name, ed25519.record_value),
    )
    return ShopDomain(rsa, ed25519)
