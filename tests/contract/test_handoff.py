"""The bounded hand-off between a network thread and its consumer (contract/handoff.py)."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from contract.handoff import Handoff


def test_items_come_out_in_order_and_an_empty_one_says_so():
    h: Handoff[int] = Handoff(10)
    for i in range(5):
        assert h.put(i)
    assert h.qsize() == 5
    assert [h.get_nowait() for _ in range(5)] == list(range(5))
    with pytest.raises(queue.Empty):
        h.get(timeout=0.01)


def test_a_full_handoff_holds_the_producer_until_there_is_room():
    h: Handoff[int] = Handoff(3)
    for i in range(3):
        h.put(i)
    done = threading.Event()
    producer = threading.Thread(target=lambda: (h.put(3), done.set()))
    producer.start()
    time.sleep(0.05)
    assert not done.is_set()  # waiting: the bound is the backpressure
    assert h.qsize() == 3
    assert h.get() == 0
    assert done.wait(5)
    producer.join()
    assert [h.get_nowait() for _ in range(3)] == [1, 2, 3]


def test_a_waiting_producer_gives_up_when_told_and_offer_drops_when_full():
    h: Handoff[str] = Handoff(1)
    h.put("a")
    stop = threading.Event()
    result: list[bool] = []
    producer = threading.Thread(target=lambda: result.append(h.put("b", give_up=stop.is_set)))
    producer.start()
    time.sleep(0.02)
    stop.set()
    producer.join(5)
    assert result == [False]
    assert not h.offer("c")
    assert h.get_nowait() == "a"
    assert h.offer("d")
    assert h.qsize() == 1
    with pytest.raises(ValueError, match="at least one"):
        Handoff(0)
