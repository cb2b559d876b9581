"""The room/match state machine (utjima/server/game.py), driven without sockets: scripted
score streams, an explicit clock, and pings answered by a simulated page."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from utjima.judge import JudgeConfig
from utjima.server import schemas
from utjima.server.game import Close, Room, RoomError
from utjima.server.settings import Settings

T0 = 1_000_000.0
SAMPLE_MS = 70.0  # ~14 Hz, like a page
Stream = Callable[[float], tuple[bool, float | None] | None]  # round-relative ms -> sample


def neutral(_t: float):
    return True, 0.1


def laughs_at(t_laugh: float, prob: float = 0.95) -> Stream:
    return lambda t: (True, prob if t >= t_laugh else 0.1)


class Sim:
    """A room plus pages: each player streams samples from a function of the time since
    the current phase started; pings are answered at once from a page clock."""

    def __init__(self, **settings) -> None:
        defaults = dict(calib_ms=2000.0, countdown_ms=1000.0, round_ms=10000.0,
                        verdict_ms=1000.0, rounds_to_win=2, grace_ms=5000.0,
                        allowed_delay_ms=300.0)
        self.s = Settings(**{**defaults, **settings})
        self.now = T0
        self.room = Room("ABCDEF", self.s, JudgeConfig(), self.now)
        self.page_offset: dict[str, float] = {}  # server_ms - page_ms, per member
        self.streams: dict[str, Stream] = {}
        self.sent: list[tuple[tuple[str, ...] | None, schemas.Out]] = []
        self.closed: list[Close] = []
        self.silent: set[str] = set()  # members whose page sends no samples at all
        # members whose samples follow the server clock in every phase (overrides streams)
        self.absolute: dict[str, Callable[[float], tuple[bool, float | None]]] = {}
        self.next_sample = T0
        self.next_tick = T0

    # --- members ------------------------------------------------------------------------

    def join(self, nick: str, role: schemas.Role = "player", stream: Stream = neutral,
             page_offset: float = 123_456.0) -> str:
        m = self.room.join(nick, role, self.now)
        self.page_offset[m.id] = page_offset
        self.streams[m.id] = stream
        self.connect(m.id)
        return m.id

    def connect(self, mid: str) -> None:
        self.take(self.room.connect(mid, self.now))

    def take(self, out) -> None:
        for o in out:
            if isinstance(o, Close):
                self.closed.append(o)
                continue
            self.sent.append((o.to, o.msg))
            if isinstance(o.msg, schemas.Ping):  # the page answers at once (loopback)
                for mid in o.to:
                    if mid in self.room.members and self.room.members[mid].connected:
                        pong = schemas.Pong(type="pong", server_ms=o.msg.server_ms,
                                            t_ms=self.now - self.page_offset[mid])
                        self.take(self.room.handle(mid, pong, self.now))

    def send(self, mid: str, msg: schemas.In) -> None:
        self.take(self.room.handle(mid, msg, self.now))

    def msgs(self, kind: type, to: str | None = None) -> list:
        return [m for t, m in self.sent if isinstance(m, kind)
                and (to is None or t is None or to in t)]

    def errors(self, to: str) -> list[schemas.ErrorMsg]:
        return self.msgs(schemas.ErrorMsg, to)

    # --- time -------------------------------------------------------------------------------

    def run(self, ms: float, until: Callable[[], bool] | None = None) -> None:
        """Advance time by up to `ms`, streaming samples and ticking every 100 ms."""
        end = self.now + ms
        while self.now < end:
            self.now = min(self.next_sample, self.next_tick, end)
            if self.now >= self.next_sample:
                self.next_sample += SAMPLE_MS
                rel = self.now - self.room.phase_start_ms
                for mid, stream in self.streams.items():
                    m = self.room.members.get(mid)
                    if m is None or not m.connected or m.role != "player" or mid in self.silent:
                        continue
                    sample = stream(rel) if self.room.phase == "round" else (True, 0.1)
                    if mid in self.absolute:
                        sample = self.absolute[mid](self.now)
                    if sample is None:
                        continue
                    face, p = sample
                    t_page = self.now - self.page_offset[mid]
                    self.send(mid, schemas.Score(type="score", t_ms=t_page,
                                                 face=face, smile_prob=p if face else None))
            if self.now >= self.next_tick:
                self.next_tick += 100.0
                self.take(self.room.tick(self.now))
            if until is not None and until():
                return

    def until_phase(self, phase: str, limit_ms: float = 60_000.0) -> None:
        self.run(limit_ms, lambda: self.room.phase == phase)
        assert self.room.phase == phase, f"still {self.room.phase} after {limit_ms} ms"

    def ready_all(self) -> None:
        for m in self.room.players:
            self.send(m.id, schemas.Ready(type="ready"))


def view(sim: Sim) -> schemas.RoomView:
    return sim.room.view(sim.now)


def score_of(sim: Sim, mid: str) -> int:
    return next(m.score for m in view(sim).members if m.id == mid)


# --- a whole match ---------------------------------------------------------------------------


def test_whole_match_the_player_who_laughs_loses():
    sim = Sim()
    a = sim.join("Ana")
    b = sim.join("Bo", stream=laughs_at(2000.0))
    spec = sim.join("Spec", role="spectator")
    assert view(sim).phase == "lobby"
    sim.send(a, schemas.Ready(type="ready"))
    assert sim.room.phase == "lobby"  # Bo is not ready yet
    sim.send(b, schemas.Ready(type="ready"))
    assert sim.room.phase == "calibrating"
    sim.until_phase("countdown")
    thresholds = {m.id: m.threshold for m in view(sim).members if m.role == "player"}
    assert thresholds[a] == pytest.approx(0.5) and thresholds[b] == pytest.approx(0.5)
    sim.until_phase("round")
    sim.until_phase("verdict")
    v = view(sim).last_verdict
    assert v.status == "loss" and [lo["player"] for lo in v.losers] == [b]
    lo = v.losers[0]
    assert lo["reason"] == "laugh" and lo["peak_prob"] == pytest.approx(0.95)
    assert 2000.0 <= lo["offence_ms"] < 2000.0 + SAMPLE_MS  # the laugh's start, round time
    assert score_of(sim, a) == 1 and score_of(sim, b) == 0
    # judge events reached everyone, spectator included, in round-relative time
    confirmed = [e for e in sim.msgs(schemas.JudgeEvent, spec)
                 if e.event["type"] == "laugh_confirmed"]
    assert confirmed and confirmed[0].event["player"] == b
    # the verdict comes quickly after the confirmation (no waiting for the time limit)
    assert sim.room.phase_start_ms - (T0 + 0) < 60_000
    sim.until_phase("match_over")
    final = view(sim)
    assert final.winners == [a] and score_of(sim, a) == 2
    [rec] = sim.room.take_records()
    assert rec.winners == (a,) and len(rec.rounds) == 2
    assert [p.result for p in rec.players] == ["win", "loss"]
    for r in rec.rounds:  # each round was lost by Bo's confirmed laugh, stored with its peak
        [lost_by] = [e for e in r.events if e.decisive]
        assert (lost_by.player, lost_by.type) == (b, "laugh_confirmed")
        assert lost_by.peak_prob == pytest.approx(0.95)
        assert 2000.0 <= lost_by.start_ms < 2000.0 + SAMPLE_MS
    # rematch: everybody ready again starts a new match with fresh calibration
    sim.ready_all()
    assert sim.room.phase == "calibrating" and sim.room.match.number == 2
    assert score_of(sim, a) == 0


def test_scores_are_relayed_to_others_not_back_to_the_sender():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.run(500)
    relayed = sim.msgs(schemas.ScoreOut)
    assert relayed
    for to, msg in [(t, m) for t, m in sim.sent if isinstance(m, schemas.ScoreOut)]:
        assert msg.player not in to  # never echoed to its author
    assert {m.player for m in relayed} == {a, b}


def test_nobody_laughs_is_a_draw_after_the_time_limit():
    sim = Sim(round_ms=3000.0)
    sim.join("A"), sim.join("B")
    sim.ready_all()
    sim.until_phase("round")
    start = sim.now
    sim.until_phase("verdict")
    assert view(sim).last_verdict.status == "draw"
    assert sim.now - start >= 3000.0  # decided only once the limit has passed
    assert all(m.score == 0 for m in view(sim).members)


def test_simultaneous_laughs_lose_together():
    sim = Sim()
    a = sim.join("A", stream=laughs_at(1500.0))
    b = sim.join("B", stream=laughs_at(1500.0))
    sim.ready_all()
    sim.until_phase("round")
    sim.until_phase("verdict")
    v = view(sim).last_verdict
    assert {lo["player"] for lo in v.losers} == {a, b}
    assert score_of(sim, a) == score_of(sim, b) == 0


def test_the_earliest_laugh_loses_even_when_confirmed_later():
    # B starts laughing first, but A's samples arrive first; the judge waits for B
    sim = Sim()
    a = sim.join("A", stream=laughs_at(1500.0))
    b = sim.join("B", stream=laughs_at(1200.0))
    sim.ready_all()
    sim.until_phase("verdict")
    assert [lo["player"] for lo in view(sim).last_verdict.losers] == [b]
    assert score_of(sim, a) == 1


def test_calibration_raises_the_threshold_of_a_smiley_resting_face():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.ready_all()
    assert sim.room.phase == "calibrating"
    # script the calibration window: A rests at 0.1, B's resting face reads 0.6
    sim.room.match.calib.clear()
    for i in range(30):
        t = sim.room.phase_start_ms + 50 + i * 60
        sim.room.match.calib.setdefault(a, []).append([t, 0.1, True])
        sim.room.match.calib.setdefault(b, []).append([t, 0.6, True])
    sim.now = sim.room.phase_end_ms + sim.s.allowed_delay_ms
    sim.take(sim.room.tick(sim.now))
    assert sim.room.phase in ("steady", "paused")  # calibrated (no samples since: paused)
    th = {m.id: m.threshold for m in view(sim).members}
    assert th[a] == pytest.approx(0.5)  # never below the model's threshold
    assert th[b] == pytest.approx(0.7)  # p95 of the resting face + 0.1


def test_calibration_without_a_face_goes_back_to_the_lobby_with_a_reason():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.streams[b] = lambda t: (False, None)
    sim.ready_all()
    # during calibration B's camera sees nobody
    orig_send = sim.send

    def send(mid, msg):
        if mid == b and isinstance(msg, schemas.Score):
            msg = schemas.Score(type="score", t_ms=msg.t_ms, face=False)
        orig_send(mid, msg)

    sim.send = send
    sim.until_phase("lobby", 10_000)
    err = [e for e in sim.errors(a) if e.code == "calibration_failed"]
    assert err and "B" in err[0].message and "no face" in err[0].message
    assert not any(m.ready for m in view(sim).members)


# --- covered cameras, drops and rejoins --------------------------------------------------------


def test_covering_the_camera_forfeits_the_round():
    sim = Sim()
    a = sim.join("A")
    b = sim.join("B", stream=lambda t: (True, 0.1) if t < 1000 else (False, None))
    sim.ready_all()
    sim.until_phase("verdict")
    [lo] = view(sim).last_verdict.losers
    assert lo["player"] == b and lo["reason"] == "absent"
    assert 1000.0 <= lo["offence_ms"] < 1000.0 + SAMPLE_MS  # timed from when the face went
    assert score_of(sim, a) == 1


def test_laughing_then_covering_the_camera_is_a_hidden_laugh():
    def stream(t):
        if t < 1000:
            return True, 0.1
        if t < 1200:
            return True, 0.95  # starts laughing...
        return False, None  # ...and covers the camera before it is confirmed

    sim = Sim()
    sim.join("A")
    b = sim.join("B", stream=stream)
    sim.ready_all()
    sim.until_phase("verdict")
    [lo] = view(sim).last_verdict.losers
    assert lo["player"] == b and lo["reason"] == "hidden_laugh"
    assert 1000.0 <= lo["offence_ms"] < 1000.0 + SAMPLE_MS  # the laugh's start


def test_a_stream_that_stops_mid_round_is_an_absence():
    sim = Sim()
    a = sim.join("A")
    b = sim.join("B", stream=lambda t: (True, 0.1) if t < 2000 else None)  # tab frozen
    sim.ready_all()
    sim.until_phase("verdict")
    [lo] = view(sim).last_verdict.losers
    assert lo["player"] == b and lo["reason"] == "absent"
    assert score_of(sim, a) == 1


def test_drop_and_rejoin_within_grace_keeps_seat_and_score():
    sim = Sim(rounds_to_win=3)
    a = sim.join("A")
    b = sim.join("B", stream=laughs_at(1500.0))
    sim.ready_all()
    sim.until_phase("verdict")
    assert score_of(sim, a) == 1
    seat_b = sim.room.members[b].seat
    conn = sim.room.members[b].conn
    sim.take(sim.room.disconnect(a, sim.room.members[a].conn, sim.now))
    assert any(isinstance(m, schemas.PeerLeft) and m.id == a for m in sim.msgs(schemas.PeerLeft, b))
    sim.until_phase("paused")  # the next round waits for A
    assert view(sim).paused_for == [a]
    assert next(m for m in view(sim).members if m.id == a).grace_left_ms > 0
    sim.run(2000)
    assert sim.room.phase == "paused"
    sim.page_offset[a] = -50_000.0  # a reload starts a new page clock
    sim.connect(a)
    assert sim.room.phase == "paused"  # back, but the detector is not streaming yet
    sim.until_phase("countdown", 2500)  # samples again, a straight face: the match goes on
    assert score_of(sim, a) == 1 and sim.room.members[b].seat == seat_b
    assert sim.room.members[b].conn == conn  # B's connection untouched
    welcome = sim.msgs(schemas.Welcome, a)[-1]
    assert welcome.you.score == 1 and welcome.you.calibrated
    sim.until_phase("verdict")
    assert score_of(sim, a) == 2  # the match went on; A's new clock maps fine


def test_drop_past_grace_forfeits_the_match():
    sim = Sim(rounds_to_win=3, grace_ms=3000.0)
    a = sim.join("A")
    b = sim.join("B", stream=laughs_at(1500.0))
    sim.ready_all()
    sim.until_phase("verdict")
    sim.take(sim.room.disconnect(b, sim.room.members[b].conn, sim.now))
    sim.until_phase("match_over", 10_000)
    assert view(sim).winners == [a]
    assert b not in sim.room.members  # the seat is free again
    [rec] = sim.room.take_records()
    results = {p.id: p.result for p in rec.players}
    assert results == {a: "win", b: "forfeit"}


def test_drop_mid_round_loses_that_round_but_rejoin_keeps_the_match():
    sim = Sim(rounds_to_win=3)
    a = sim.join("A")
    b = sim.join("B")
    sim.ready_all()
    sim.until_phase("round")
    sim.run(1000)
    sim.take(sim.room.disconnect(b, sim.room.members[b].conn, sim.now))
    sim.until_phase("verdict")
    [lo] = view(sim).last_verdict.losers
    assert lo["player"] == b and lo["reason"] == "absent"
    sim.connect(b)
    sim.until_phase("round")
    assert score_of(sim, a) == 1 and b in sim.room.round.players


def test_leaving_for_good_in_a_three_player_match_lets_the_others_play_on():
    sim = Sim(rounds_to_win=2)
    a, b = sim.join("A"), sim.join("B")
    c = sim.join("C", stream=laughs_at(1500.0))
    sim.ready_all()
    sim.until_phase("verdict")
    assert [lo["player"] for lo in view(sim).last_verdict.losers] == [c]
    assert score_of(sim, a) == score_of(sim, b) == 1
    sim.send(b, schemas.Leave(type="leave"))
    assert any(cl.member == b for cl in sim.closed)
    sim.until_phase("match_over")
    assert view(sim).winners == [a]
    [rec] = sim.room.take_records()
    assert {p.id: p.result for p in rec.players}[b] == "forfeit"


def test_a_connected_player_whose_detector_stays_silent_forfeits_after_the_grace():
    sim = Sim(rounds_to_win=3, grace_ms=3000.0)
    a = sim.join("A")
    b = sim.join("B", stream=laughs_at(1500.0))
    sim.ready_all()
    sim.until_phase("verdict")
    sim.silent.add(b)  # B's page stays open but its detector died: no samples at all
    sim.until_phase("paused")
    assert view(sim).paused_for == [b] and view(sim).phase_left_ms == pytest.approx(3000.0, abs=100)
    sim.until_phase("match_over", 5000)
    assert view(sim).winners == [a]
    assert b in sim.room.members  # still in the room, out of the match
    [rec] = sim.room.take_records()
    assert {p.id: p.result for p in rec.players} == {a: "win", b: "forfeit"}


def test_the_match_waits_for_a_player_who_left_during_the_countdown():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.ready_all()
    sim.until_phase("countdown")
    sim.take(sim.room.disconnect(b, sim.room.members[b].conn, sim.now))
    assert sim.room.phase == "paused"
    sim.connect(b)
    sim.until_phase("countdown", 2500)
    del a


def test_a_second_socket_for_the_same_seat_replaces_the_first():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.connect(a)  # the same token says hello again (a reload)
    assert any(c.member == a and c.code == 4409 for c in sim.closed)
    assert [e.code for e in sim.errors(a)] == ["replaced"]
    assert sim.room.members[a].connected
    # the others are told to drop the old call and expect a new one
    kinds = [type(m).__name__ for t, m in sim.sent
             if t and b in t and isinstance(m, schemas.PeerLeft | schemas.PeerJoined)]
    assert kinds[-2:] == ["PeerLeft", "PeerJoined"]


# --- rights and limits --------------------------------------------------------------------


def test_spectators_cannot_post_scores_or_get_ready():
    sim = Sim()
    sim.join("A")
    s = sim.join("S", role="spectator")
    sim.send(s, schemas.Score(type="score", t_ms=10.0, face=True, smile_prob=0.9))
    sim.send(s, schemas.Ready(type="ready"))
    assert [e.code for e in sim.errors(s)] == ["forbidden", "forbidden"]
    assert "spectators cannot post scores" in sim.errors(s)[0].message
    assert not sim.msgs(schemas.ScoreOut)


def test_a_player_cannot_post_for_another_player():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    t = sim.now - sim.page_offset[a]
    sim.send(a, schemas.Score(type="score", t_ms=t, face=True, smile_prob=0.9, player=b))
    [err] = sim.errors(a)
    assert err.code == "forbidden" and "your own scores" in err.message
    assert not sim.msgs(schemas.ScoreOut)
    sim.send(a, schemas.Score(type="score", t_ms=t + 1, face=True, smile_prob=0.9, player=a))
    assert [m.player for m in sim.msgs(schemas.ScoreOut)] == [a]


def test_join_limits():
    sim = Sim(max_players=2, max_spectators=1)
    sim.join("A"), sim.join("A")  # same nickname twice
    assert [m.nickname for m in sim.room.players] == ["A", "A (2)"]
    with pytest.raises(RoomError) as e:
        sim.room.join("C", "player", sim.now)
    assert e.value.code == "room_full" and e.value.status == 409
    sim.join("S", role="spectator")
    with pytest.raises(RoomError) as e:
        sim.room.join("T", "spectator", sim.now)
    assert e.value.code == "too_many_spectators"
    sim.ready_all()
    sim2 = Sim()
    sim2.join("A"), sim2.join("B")
    sim2.ready_all()
    with pytest.raises(RoomError) as e:
        sim2.room.join("C", "player", sim2.now)
    assert e.value.code == "match_in_progress"
    sim2.room.join("C", "spectator", sim2.now)  # watching is fine


def test_ready_during_a_match_is_refused():
    sim = Sim()
    a, _ = sim.join("A"), sim.join("B")
    sim.ready_all()
    sim.send(a, schemas.Ready(type="ready"))
    assert sim.errors(a)[-1].code == "bad_phase"


def test_signals_go_to_one_named_peer_only():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    s1, s2 = sim.join("S1", role="spectator"), sim.join("S2", role="spectator")
    sim.send(a, schemas.Signal(type="signal", to=b, kind="offer", sdp="v=0 offer"))
    [(to, msg)] = [(t, m) for t, m in sim.sent if isinstance(m, schemas.SignalOut)]
    assert to == (b,) and msg.sender == a and schemas.dump(msg)["from"] == a
    sim.send(s1, schemas.Signal(type="signal", to=a, kind="offer", sdp="v=0 recvonly"))
    assert sim.msgs(schemas.SignalOut)[-1].sender == s1
    sim.send(s1, schemas.Signal(type="signal", to=s2, kind="offer", sdp="v=0"))
    assert sim.errors(s1)[-1].code == "forbidden"
    sim.send(a, schemas.Signal(type="signal", to="mnobody", kind="ice", candidate=None))
    assert sim.errors(a)[-1].code == "bad_peer"
    sim.send(a, schemas.Signal(type="signal", to=a, kind="ice", candidate=None))
    assert sim.errors(a)[-1].code == "bad_peer"


def test_welcome_lists_connected_peers_and_ice_servers():
    sim = Sim(ice_servers=({"urls": "stun:stun.example.org:3478"},))
    a = sim.join("A")
    b = sim.join("B")
    w = sim.msgs(schemas.Welcome, b)[-1]
    assert [p.id for p in w.peers] == [a]
    assert w.ice_servers == [{"urls": "stun:stun.example.org:3478"}]
    assert w.judge["threshold"] == 0.5


# --- clock handling ---------------------------------------------------------------------------


def test_back_dated_samples_are_rejected_and_future_ones_clamped():
    sim = Sim()
    a, b = sim.join("A", page_offset=1000.0), sim.join("B")
    sim.ready_all()
    sim.until_phase("round")
    sim.streams[a] = lambda t: None  # A's page is scripted by hand below
    sim.run(500)
    m = sim.room.members[a]
    # a sample claiming to be 5 s old on arrival (sat on, then back-dated)
    sim.send(a, schemas.Score(type="score", t_ms=sim.now - 1000.0 - 5000.0, face=True,
                              smile_prob=0.9))
    assert sim.errors(a)[-1].code == "stale_sample"
    # a sample from the future is put at its receipt time
    sim.room.members[a].last_error_ms = -1e18
    sim.send(a, schemas.Score(type="score", t_ms=sim.now - 1000.0 + 10_000.0, face=True,
                              smile_prob=0.1))
    assert m.clock.last_ms == sim.now
    # ... so the next honest sample (earlier than that claim) is out of order
    sim.now += 10
    sim.room.members[a].last_error_ms = -1e18
    sim.send(a, schemas.Score(type="score", t_ms=sim.now - 1000.0 - 20, face=True, smile_prob=0.1))
    assert sim.errors(a)[-1].code == "out_of_order"
    del b


def test_samples_map_onto_the_server_clock_through_the_measured_offset():
    sim = Sim()
    a = sim.join("A", page_offset=-777_000.0)
    m = sim.room.members[a]
    assert m.clock.synced and m.clock.offset_ms == pytest.approx(-777_000.0)
    t = m.clock.map(sim.now + 777_000.0 - 40.0, sim.now)  # taken 40 ms ago
    assert t == pytest.approx(sim.now - 40.0)


def test_a_late_sample_behind_the_judged_timeline_is_not_judged():
    sim = Sim(allowed_delay_ms=200.0, max_sample_age_ms=2000.0)
    a, _ = sim.join("A"), sim.join("B")
    sim.ready_all()
    sim.until_phase("round")
    sim.streams[a] = lambda t: None
    sim.run(1500)
    # 1 s old: young enough for the clock, but the judge committed A's timeline to now-200
    sim.send(a, schemas.Score(type="score", t_ms=sim.now - sim.page_offset[a] - 1000.0,
                              face=True, smile_prob=0.99))
    assert sim.errors(a)[-1].code == "sample_rejected"


# --- straight face, please (issue 10, item 3) -------------------------------------------------


def test_a_player_still_laughing_from_the_last_round_does_not_lose_the_next_at_once():
    sim = Sim(rounds_to_win=3)
    a = sim.join("A")
    b = sim.join("B", stream=laughs_at(1500.0))
    sim.ready_all()
    sim.until_phase("verdict")
    assert sim.room.last_verdict.losers[0]["player"] == b
    # B keeps laughing through the verdict and for 3 s after it, then calms down
    stop_ms = sim.room.phase_start_ms + 3000.0
    sim.absolute[b] = lambda now: (True, 0.95 if now < stop_ms else 0.1)
    sim.streams[b] = neutral  # in round 2 B is calm (when the absolute stream says so)
    sim.streams[a] = laughs_at(2000.0)  # ... and A cracks up 2 s into round 2
    sim.until_phase("steady")
    assert view(sim).not_straight == [b]  # "straight face, please": the round waits for B
    sim.run(stop_ms - sim.now - 100)
    assert sim.room.phase == "steady", "no countdown while B still smiles"
    sim.until_phase("countdown", sim.s.steady_ms + 500)
    assert sim.now >= stop_ms + sim.s.steady_ms  # B's face stayed straight for steady_ms
    assert view(sim).not_straight == []
    sim.until_phase("round")
    round2_start = sim.now
    sim.until_phase("verdict")
    assert sim.room.last_verdict.round == 2
    assert [lo["player"] for lo in sim.room.last_verdict.losers] == [a]  # not B, at once
    assert sim.now - round2_start > 2000


def test_a_smile_during_the_countdown_sends_the_room_back_to_steady():
    sim = Sim(countdown_ms=3000.0)
    a, b = sim.join("A"), sim.join("B")
    sim.ready_all()
    sim.until_phase("countdown")
    grin_from = sim.now + 1000
    sim.absolute[b] = lambda now: (True, 0.9 if grin_from <= now < grin_from + 500 else 0.1)
    sim.run(1300)
    assert sim.room.phase == "steady" and view(sim).not_straight == [b]
    sim.until_phase("countdown", 2000)
    sim.until_phase("round", 3500)
    del a


def test_steady_gives_up_after_steady_max_ms_and_says_so():
    sim = Sim(steady_max_ms=4000.0)
    a, b = sim.join("A"), sim.join("B")
    sim.ready_all()
    sim.absolute[b] = lambda now: (True, 0.95)  # B cannot stop grinning (after calibration)
    sim.until_phase("steady")
    entered = sim.now
    sim.until_phase("countdown", 6000)
    assert sim.now - entered >= 4000
    [notice] = [n for n in sim.msgs(schemas.Notice) if n.code == "steady_timeout"]
    assert notice.names == ["B"]
    sim.until_phase("round", 2000)  # B's grin no longer stops the countdown
    sim.until_phase("verdict", 3000)
    assert [lo["player"] for lo in sim.room.last_verdict.losers] == [b]
    del a


def test_a_face_out_of_view_is_not_a_straight_face():
    sim = Sim(rounds_to_win=3)
    a, b = sim.join("A"), sim.join("B", stream=laughs_at(1000.0))
    sim.ready_all()
    sim.until_phase("verdict")
    sim.absolute[b] = lambda now: (False, None)  # B turns away (still streaming)
    sim.until_phase("steady")
    sim.run(3000)
    assert sim.room.phase == "steady" and view(sim).not_straight == [b]
    del a


# --- a match nobody played is nobody's win (item 6) --------------------------------------------


def test_a_player_leaving_during_calibration_abandons_the_match_nothing_stored():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.ready_all()
    assert sim.room.phase == "calibrating"
    sim.send(b, schemas.Leave(type="leave"))
    assert sim.room.phase == "lobby"
    assert sim.room.take_records() == []
    v = view(sim)
    assert v.winners == [] and v.last_verdict is None and v.match_id is None
    [notice] = [n for n in sim.msgs(schemas.Notice, a) if n.code == "match_abandoned"]
    assert notice.names == ["B"]
    # the next match is number 1 again and plays normally
    sim.join("C")
    sim.ready_all()
    assert sim.room.match.number == 1


def test_an_aborted_rematch_is_not_stored_and_farming_wins_stores_nothing():
    sim = Sim(rounds_to_win=1)
    a = sim.join("A")
    b = sim.join("B", stream=laughs_at(1000.0))
    sim.ready_all()
    sim.until_phase("match_over")
    assert len(sim.room.take_records()) == 1
    for i in range(10):  # what the prober did: ready, leave during calibration, rejoin
        sim.ready_all()
        assert sim.room.phase == "calibrating"
        sim.send(b, schemas.Leave(type="leave"))
        assert sim.room.phase == "lobby"
        b = sim.join(f"B{i}")
    assert sim.room.take_records() == []
    del a


# --- the host: rules, kick, lock (issue 10) ------------------------------------------------------


def test_only_the_host_sets_the_rules_between_matches_and_the_match_follows_them():
    sim = Sim()
    a = sim.join("A")
    b = sim.join("B", stream=laughs_at(1000.0))
    assert view(sim).host == a
    sim.send(b, schemas.Rules(type="rules", rounds_to_win=1))
    assert sim.errors(b)[-1].code == "forbidden" and view(sim).rounds_to_win == 2
    sim.send(a, schemas.Rules(type="rules", rounds_to_win=1, round_ms=15000))
    v = view(sim)
    assert (v.rounds_to_win, v.round_ms) == (1, 15000.0)
    assert sim.room.info().rounds_to_win == 1
    sim.ready_all()
    sim.send(a, schemas.Rules(type="rules", rounds_to_win=3))
    assert sim.errors(a)[-1].code == "bad_phase"
    sim.until_phase("round")
    assert sim.room.phase_end_ms - sim.room.phase_start_ms == 15000.0
    sim.until_phase("match_over")  # first to 1
    [rec] = sim.room.take_records()
    assert rec.rounds_to_win == 1 and len(rec.rounds) == 1


def test_rules_refuse_more_rounds_to_win_than_the_server_allows():
    sim = Sim(max_rounds=4, rounds_to_win=2)
    a = sim.join("A")
    sim.send(a, schemas.Rules(type="rules", rounds_to_win=5))
    assert sim.errors(a)[-1].code == "bad_message" and view(sim).rounds_to_win == 2


def test_the_host_kicks_a_seat_that_never_gets_ready_and_locks_the_room():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    spec = sim.join("S", role="spectator")
    sim.send(b, schemas.Kick(type="kick", member=a))
    assert sim.errors(b)[-1].code == "forbidden" and a in sim.room.members
    sim.send(a, schemas.Kick(type="kick", member=b))
    assert b not in sim.room.members
    assert any(c.member == b and c.code == 4403 for c in sim.closed)
    assert [n.names for n in sim.msgs(schemas.Notice, b) if n.code == "kicked"] == [["A"]]
    assert any(m.id == b for m in sim.msgs(schemas.PeerLeft, spec))
    sim.send(a, schemas.Rules(type="rules", locked=True))
    assert view(sim).locked and sim.room.info().locked
    with pytest.raises(RoomError) as e:
        sim.room.join("B", "player", sim.now)
    assert e.value.code == "room_locked" and e.value.status == 403
    sim.send(a, schemas.Kick(type="kick", member=a))
    assert sim.errors(a)[-1].code == "bad_peer"


def test_the_host_role_passes_to_the_oldest_player_when_the_host_leaves():
    sim = Sim()
    spec = sim.join("S", role="spectator")
    assert view(sim).host == spec  # whoever came first (the room's creator)
    a, b = sim.join("A"), sim.join("B")
    sim.send(spec, schemas.Leave(type="leave"))
    assert view(sim).host == a
    sim.send(a, schemas.Leave(type="leave"))
    assert view(sim).host == b


# --- mic, camera, reactions ----------------------------------------------------------------------


def test_a_player_without_a_camera_says_why_and_everyone_sees_it():
    sim = Sim()
    a, b = sim.join("A"), sim.join("B")
    sim.send(b, schemas.Media(type="media", mic=False, camera=False, camera_error="not_found"))
    seen = {m.id: (m.mic, m.camera, m.camera_error) for m in sim.msgs(schemas.RoomMsg, a)[-1]
            .room.members}
    assert seen == {a: (True, True, None), b: (False, False, "not_found")}


def test_reactions_reach_everyone_and_are_rate_limited():
    sim = Sim(react_rate_per_s=1.0, react_burst=3)
    a = sim.join("A")
    spec = sim.join("S", role="spectator")
    for _ in range(5):
        sim.send(spec, schemas.React(type="react", emoji="😂"))
    got = [r for r in sim.msgs(schemas.ReactionOut, a)]
    assert len(got) == 3 and all(r.sender == spec and r.emoji == "😂" for r in got)
    assert [e.code for e in sim.errors(spec)] == ["rate_limited"]
    sim.run(1000)
    sim.send(spec, schemas.React(type="react", emoji="👏"))
    assert len(sim.msgs(schemas.ReactionOut, a)) == 4
    assert schemas.dump(got[0])["from"] == spec
