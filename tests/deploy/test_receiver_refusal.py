"""A broker that refuses the credentials of a link receiving in a child process
(``contract/mqtt_process.py``): the refusal reaches the parent as the same one-line
:class:`BrokerRefused`, and the child's warning reaches the parent's log."""

from __future__ import annotations

import logging

import pytest

from contract.mqtt import BrokerRefused
from contract.mqtt_process import ProcessLink

pytestmark = pytest.mark.broker


def test_a_refusal_in_the_child_is_raised_and_logged_in_the_parent(secure_broker, caplog):
    caplog.set_level(logging.WARNING, logger="contract.mqtt")
    link = ProcessLink(
        "qloop-refused-receiver",
        secure_broker.login("qloop-worker", "guessed-s3cret"),
        clean_session=False,
        subscriptions=["qloop/v1/+/+/#"],
        manual_ack=True,
    )
    link.start()
    try:
        with pytest.raises(BrokerRefused, match=r"\(user qloop-worker\): Not authorized"):
            link.wait_connected(30)
        assert link.wait_refused(0) is link.refusal is not None
        assert not link.connected and not link.wait_subscribed(0)
    finally:
        link.close()
    warned = [r for r in caplog.records if r.name == "contract.mqtt"]
    assert any("refused the connection (Not authorized)" in r.getMessage() for r in warned)
