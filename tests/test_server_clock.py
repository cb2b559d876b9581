"""Client clocks onto the server clock (utjima/server/clock.py): no back-dating."""

from __future__ import annotations

import pytest

from utjima.server.clock import ClockError, ClockSync


def synced(offset: float = 5000.0, rtt: float = 20.0) -> ClockSync:
    c = ClockSync(max_age_ms=2000.0)
    c.ping_sent(1000.0)
    # the page read its clock halfway through the round trip
    assert c.pong(1000.0, 1000.0 + rtt / 2 - offset, 1000.0 + rtt)
    return c


def test_offset_from_the_fastest_round_trip():
    c = synced(offset=5000.0, rtt=40.0)
    assert c.offset_ms == pytest.approx(5000.0) and c.rtt_ms == 40.0
    c.ping_sent(2000.0)
    c.pong(2000.0, 2000.0 + 100 - 5003.0, 2200.0)  # slower: ignored
    assert c.offset_ms == pytest.approx(5000.0)
    c.ping_sent(3000.0)
    c.pong(3000.0, 3000.0 + 5 - 4999.0, 3010.0)  # faster: taken
    assert c.offset_ms == pytest.approx(4999.0) and c.rtt_ms == 10.0


def test_forged_pongs_are_ignored():
    c = ClockSync(max_age_ms=2000.0)
    assert not c.pong(1234.0, 0.0, 1300.0)  # no such ping was sent
    assert not c.synced
    c.ping_sent(1000.0)
    assert c.pong(1000.0, 0.0, 1010.0)
    assert not c.pong(1000.0, 0.0, 1020.0)  # answered twice


def test_samples_map_and_are_bounded_by_their_receipt_time():
    c = synced(offset=5000.0)
    assert c.map(10_000.0 - 5000.0 - 30.0, 10_000.0) == pytest.approx(9970.0)
    # a claim from the future is put at the receipt time: the upper bound
    assert c.map(20_000.0, 10_050.0) == 10_050.0


def test_back_dated_and_out_of_order_samples_are_rejected():
    c = synced(offset=5000.0)
    with pytest.raises(ClockError) as e:
        c.map(10_000.0 - 5000.0 - 2500.0, 10_000.0)  # 2.5 s old on arrival
    assert e.value.code == "stale_sample" and "2000 ms" in str(e.value)
    c.map(5000.0, 10_000.0)
    with pytest.raises(ClockError) as e:
        c.map(4990.0, 10_010.0)  # earlier than the last accepted sample
    assert e.value.code == "out_of_order"
    with pytest.raises(ClockError):
        c.map(5000.0, 10_020.0)  # the same time again


def test_unsynced_clocks_use_the_receipt_time():
    c = ClockSync(max_age_ms=2000.0)
    assert c.map(123.0, 10_000.0) == 10_000.0


def test_a_locked_offset_ignores_better_pings_until_unlocked():
    c = synced(offset=5000.0, rtt=40.0)
    c.lock()
    c.ping_sent(2000.0)
    c.pong(2000.0, 2000.0 + 1 - 4900.0, 2002.0)
    assert c.offset_ms == pytest.approx(4900.0)
    assert c.map(6000.0, 11_100.0) == pytest.approx(11_000.0)  # still 5000
    c.unlock()
    assert c.map(6200.0, 11_200.0) == pytest.approx(11_100.0)
