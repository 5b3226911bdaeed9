"""Two relay nodes on one Redis ([stores] backend = "redis"): a sender profile and a suppression
imported through node A stop the mail at node B's next RCPT; with Redis gone, node B answers
451 4.3.0 (never fails open), and once Redis is back it answers from the stores again."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    SENDER_ADDRESS,
    US_RECIPIENT,
    add_shop_sender,
    import_rows,
    policy_config,
    reply_status,
    submit,
)
from tests.support.network import free_port
from tests.support.redis_server import RedisServer


def test_a_suppression_at_node_a_refuses_at_node_b_and_redis_down_defers(
    make_relay, shop, sink, tmp_path
):
    server = RedisServer(tmp_path / "redis", free_port()).start()
    try:
        shared = {
            "stores": {"backend": "redis", "hmac_key_file": str(tmp_path / "address-hmac.key")},
            "redis": {"url": server.url, "key_prefix": "fleet:", "timeout": 0.5},
        }
        config = {**policy_config(sink, shop), **shared}
        node_a = make_relay(config, name="node-a")
        node_b = make_relay(config, name="node-b")
        add_shop_sender(node_a)
        import_rows(
            node_a,
            "suppressions",
            [{"address": US_RECIPIENT, "sender_id": "shop", "reason": "unsubscribe_one_click"}],
        )
        other = "bob@example.us"
        replies, data = submit(node_b, [US_RECIPIENT, other], message())
        assert replies[US_RECIPIENT][0] == 550, replies
        assert reply_status(replies[US_RECIPIENT][1]) == "5.7.1"
        assert replies[other][0] == 250, replies
        assert data is not None
        assert data[0] == 250, data
        (delivered,) = sink.wait_for(1)
        assert delivered.rcpt_tos == [other]

        server.stop()
        with node_b.smtp() as client:
            client.ehlo("mailer.shop.example")
            code, text = client.mail(SENDER_ADDRESS)
            if code == 250:  # the sender was known before: RCPT asks the stores
                code, text = client.rcpt(other)
        assert (code, reply_status(text.decode())) == (451, "4.3.0"), (code, text)

        server.start()  # empty again (no persistence): the sender is unknown now
        add_shop_sender(node_a)
        replies, data = submit(node_b, [other], message())
        assert replies[other][0] == 250, replies
        assert data is not None
        assert data[0] == 250, data
    finally:
        server.stop()
