"""Two relay nodes on one host, one per core: both listen on the same submission port ([smtp]
reuse_port), each with its own spool and audit chain, both on one stores file. The kernel
spreads the connections over them; a suppression imported through one refuses at both, and
everything either accepts is delivered."""

from __future__ import annotations

import json
from pathlib import Path

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    import_rows,
    policy_config,
    submit,
)

CONNECTIONS = 24  # all on one node by chance: 2 in 2**24


def accepted(node_directory: Path) -> int:
    paths = sorted((node_directory / "var" / "audit").glob("audit-*.jsonl"))
    records = [json.loads(line) for path in paths for line in path.read_text().splitlines()]
    return sum(1 for record in records if record["action"] == "accept")


def test_two_nodes_share_the_port_and_the_stores(make_relay, shop, sink, tmp_path):
    config = policy_config(sink, shop)
    node_a = make_relay({**config, "smtp": {"reuse_port": True}}, name="node-a")
    shared = node_a.directory / "var"
    node_b = make_relay(
        {
            **config,
            "smtp": {"listen": node_a.config["smtp"]["listen"], "reuse_port": True},
            "stores": {
                "path": str(shared / "stores.sqlite"),
                "hmac_key_file": str(shared / "keys" / "address-hmac.key"),
            },
            "rewrite": {"token_key_file": str(shared / "keys" / "unsubscribe-token.key")},
        },
        name="node-b",
    )
    add_shop_sender(node_a)
    import_rows(
        node_a,
        "suppressions",
        [{"address": US_RECIPIENT, "sender_id": "shop", "reason": "unsubscribe_one_click"}],
    )

    recipients = [f"reader{number}@example.us" for number in range(CONNECTIONS)]
    for recipient in recipients:
        replies, data = submit(node_a, [US_RECIPIENT, recipient], message())
        assert replies[US_RECIPIENT][0] == 550, replies  # suppressed, whichever node answers
        assert replies[recipient][0] == 250, replies
        assert data is not None
        assert data[0] == 250, data

    delivered = sink.wait_for(CONNECTIONS)
    assert sorted(rcpt for envelope in delivered for rcpt in envelope.rcpt_tos) == sorted(
        recipients
    )
    by_node = [accepted(node.directory) for node in (node_a, node_b)]
    assert sum(by_node) == CONNECTIONS
    assert min(by_node) > 0, by_node  # both nodes took connections
