"""`Room`: the pure, time-explicit room and match state machine.

No sockets, no clock, no database: every method takes `now_ms` (the server clock; only
TURN credentials in `welcome` read Settings.wall_clock, their expiry being unix time) and
returns the messages to send (`Send`) or connections to close (`Close`); finished
matches wait in `take_records()` for the hub to store. Tests drive a whole match with
scripted score streams and hand-picked times.

Phases (a match runs from calibrating to match_over):

    lobby --all ready (>= 2)--> calibrating --thresholds--> steady --> countdown --> round
      ^   calibration failed: back to lobby <--'              ^  <--a smile--'       |
      |                                                       |              verdict decided
    match_over <--someone reached rounds_to_win (or max_rounds)-- verdict <---------'
      `--all ready again (rematch)--> calibrating          paused <--a player is away--'

- calibrating: each player's samples in [start, end] go to `judge.calibrate`, which sets
  that player's threshold for the match (only ever above the model's).
- steady ("straight face, please"): the countdown starts once every player's samples have
  stayed below their threshold, face in view, for `steady_ms` (or after `steady_max_ms`
  anyway); a smile at or above the threshold during the countdown sends the room back to
  steady. A laugh carried over from the last round therefore dies down before the next
  one starts, instead of losing it at once.
- a match that ends before any round was decided (a player left during calibration) is
  abandoned: back to the lobby, never stored, nobody credited.
- round: `judge.new_round` with those thresholds; samples go to `round_update`, ticks to
  `round_advance(now - allowed_delay_ms)`, and `round_verdict` after each; the earliest
  confirmed laugh (or hidden face) loses, everybody else scores a point.
- a dropped player keeps seat and score for `grace_ms` (a reload rejoins with the token);
  the match pauses before the next countdown until they are back, and they forfeit the
  match when the grace runs out. During a round, a dropped stream is an absence for the
  judge (a covered camera or a cut cable must not be a way to win).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from utjima import judge
from utjima.judge import CalibrationError, JudgeConfig
from utjima.server import ice, schemas
from utjima.server.clock import ClockError, ClockSync
from utjima.server.ratelimit import TokenBucket
from utjima.server.records import EventRecord, MatchRecord, PlayerRecord, RoundRecord
from utjima.server.settings import PING_EVERY_MS, SCORE_HZ, Settings

Sample = list  # [t_ms, smile_prob | None, face]
FAST_PINGS = 5  # pings 200 ms apart after connecting, then one every PING_EVERY_MS
FAST_PING_MS = 200.0
SAMPLE_ERROR_EVERY_MS = 2000.0  # at most one rejected-sample error per member this often
# A player counts as back (a paused match resumes) once connected *and* streaming: a
# sample arrived within this long. A page that reloads needs a moment to restart its
# detector, and a round started before that would be lost to "face absent".
STREAMING_MS = 1500.0


class RoomError(Exception):
    """A request the room refuses; `status` is the HTTP status for the REST routes."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Send:
    """Deliver `msg` to these member ids (None: every connected member)."""

    to: tuple[str, ...] | None
    msg: schemas.Out


@dataclass(frozen=True)
class Close:
    """Close this member's connection (after sending what comes before)."""

    member: str
    code: int
    reason: str


Output = Send | Close


@dataclass
class Member:
    id: str  # public id, what other clients see
    token: str  # secret, authenticates the websocket
    nickname: str
    role: schemas.Role
    seat: int | None  # players 0..3, spectators None
    connected: bool = False
    conn: int = 0  # connection generation: a newer socket replaces an older one
    away_since_ms: float | None = None  # disconnected at (grace runs from here)
    ready: bool = False
    clock: ClockSync | None = None  # this connection's clock mapping
    next_ping_ms: float = 0.0
    fast_pings_left: int = 0
    last_error_ms: float = -math.inf
    last_sample_ms: float = -math.inf  # server time the last accepted sample arrived
    key_hash: str | None = None  # identity (device key SHA-256) the result counts for
    last_t_ms: float | None = None  # mapped (server-clock) time of that sample
    # mapped time of the first sample of the current run of straight-face samples (face
    # in view, below the player's threshold, none more than max_sample_gap_ms apart)
    straight_since_ms: float | None = None
    mic: bool = True  # what the member's page says (media message)
    camera: bool = True
    camera_error: schemas.CameraError | None = None
    reactions: TokenBucket | None = None  # emoji rate limit
    ice_at_ms: float = 0.0  # when this connection's TURN credentials were made


@dataclass
class MatchPlayer:
    id: str
    nickname: str
    seat: int
    threshold: float | None = None  # from calibration
    score: int = 0  # rounds won
    status: str = "active"  # "active" | "forfeit" (left the match)
    key_hash: str | None = None  # Member.key_hash


@dataclass
class Match:
    number: int  # per room, 1-based
    started_ms: float
    players: dict[str, MatchPlayer]  # by id, seat order
    calib: dict[str, list[Sample]] = field(default_factory=dict)
    rounds: list[RoundRecord] = field(default_factory=list)  # decided rounds
    id: int | None = None  # database id once stored


def _rel(ev: dict[str, Any], t0: float) -> dict[str, Any]:
    """A judge event with its times relative to the round start (what clients see)."""
    return {k: (v - t0 if k.endswith("_ms") and isinstance(v, float | int) else v)
            for k, v in ev.items()}


class Room:
    def __init__(self, code: str, settings: Settings, cfg: JudgeConfig, now_ms: float) -> None:
        self.code, self.s, self.cfg = code, settings, cfg
        self.members: dict[str, Member] = {}
        self.phase: schemas.Phase = "lobby"
        self.phase_start_ms = now_ms
        self.phase_end_ms: float | None = None
        self.match: Match | None = None  # running match, or the last one at match_over
        self.n_matches = 0
        self.round: judge.RoundState | None = None
        self.round_no = 0
        self.round_events: list[dict[str, Any]] = []  # tagged judge events of this round
        self.last_verdict: schemas.VerdictView | None = None
        self.winners: list[str] = []
        self.records: list[MatchRecord] = []
        self.host: str | None = None  # member id: the room's creator, then the oldest member
        self.rounds_to_win = settings.rounds_to_win  # the host may change these two
        self.round_ms = settings.round_ms
        self.locked = False  # the host locked the room: nobody new joins
        self.countdown_forced = False  # steady_max_ms ran out: a smile no longer stops it
        self.not_straight: list[str] = []  # last computed for the view (steady, countdown)
        self.last_active_ms = now_ms
        self.joined_ever = False  # a room nobody ever joined is dropped sooner
        # spectating: anyone with the code ("open"), or only with the host's watch link
        self.spectating: schemas.Spectating = "open"
        self.watch_key = secrets.token_urlsafe(12)
        self._out: list[Output] = []
        self._dirty = False

    # --- membership (HTTP) -------------------------------------------------------------------

    @property
    def players(self) -> list[Member]:
        return sorted((m for m in self.members.values() if m.role == "player"),
                      key=lambda m: m.seat or 0)

    @property
    def spectators(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "spectator"]

    @property
    def in_match(self) -> bool:
        return self.phase not in ("lobby", "match_over")

    def can_join(self, role: schemas.Role, watch_key: str | None = None) -> RoomError | None:
        if self.locked:
            return RoomError(403, "room_locked", "the host has locked this room")
        if role == "player":
            if self.in_match:
                return RoomError(409, "match_in_progress",
                                 "a match is in progress: join as a spectator, "
                                 "or wait for it to end")
            if len(self.players) >= self.s.max_players:
                return RoomError(409, "room_full",
                                 f"the room is full ({self.s.max_players} players): "
                                 "join as a spectator")
        elif len(self.spectators) >= self.s.max_spectators:
            return RoomError(409, "too_many_spectators",
                             f"the room already has {self.s.max_spectators} spectators")
        elif self.spectating == "invite" and not (
                watch_key and secrets.compare_digest(watch_key.encode(), self.watch_key.encode())):
            return RoomError(403, "invite_only", "this room's host lets in only spectators "
                                                 "with the watch link: ask them for it")
        return None

    def join(self, nickname: str, role: schemas.Role, now_ms: float, *,
             key_hash: str | None = None, watch_key: str | None = None) -> Member:
        """Add a member (not yet connected); raises RoomError when the room says no."""
        err = self.can_join(role, watch_key)
        if err:
            raise err
        taken = {m.nickname for m in self.members.values()}
        name, n = nickname, 2
        while name in taken:  # "Mina" twice becomes "Mina (2)"
            name = f"{nickname[:schemas.NICKNAME_MAX - 4]} ({n})"
            n += 1
        seat = None
        if role == "player":
            seat = min(set(range(self.s.max_players)) - {m.seat for m in self.players})
        mid = "m" + secrets.token_hex(4)
        m = Member(id=mid, token=secrets.token_urlsafe(24), nickname=name, role=role,
                   seat=seat, away_since_ms=now_ms, key_hash=key_hash)
        m.reactions = TokenBucket(self.s.react_rate_per_s, self.s.react_burst)
        self.members[mid] = m
        if self.host is None:
            self.host = mid
        self.last_active_ms = now_ms
        self.joined_ever = True
        self._dirty = True
        return m

    def by_token(self, token: str) -> Member | None:
        for m in self.members.values():
            if secrets.compare_digest(m.token.encode(), token.encode()):
                return m
        return None

    def resume(self, tokens: list[str]) -> Member | None:
        """The first of these tokens whose member is away (in its grace period)."""
        for t in tokens:
            m = self.by_token(t)
            if m is not None and not m.connected:
                return m
        return None

    def info(self) -> schemas.RoomInfo:
        host = self.members.get(self.host or "")
        return schemas.RoomInfo(
            code=self.code, phase=self.phase, players=[m.nickname for m in self.players],
            spectators=len(self.spectators), max_players=self.s.max_players,
            can_join_as_player=self.can_join("player") is None,
            can_spectate=self.can_join("spectator") is None,
            spectating=self.spectating,
            host=host.nickname if host else None, locked=self.locked,
            rounds_to_win=self.rounds_to_win, round_ms=self.round_ms)

    @property
    def empty(self) -> bool:
        return not self.members

    # --- connections ---------------------------------------------------------------------------

    def connect(self, member_id: str, now_ms: float) -> list[Output]:
        """A socket said hello with this member's token (a newer socket replaces an older)."""
        m = self.members[member_id]
        others = tuple(o.id for o in self._connected() if o.id != m.id)
        if m.connected:  # a reload whose old socket is still open: the new one wins
            self._out.append(Send((m.id,), schemas.ErrorMsg(
                code="replaced", message="this seat was opened in another tab or window")))
            self._out.append(Close(m.id, 4409, "replaced"))
            self._out.append(Send(others, schemas.PeerLeft(id=m.id)))  # peers drop the old call
        self._out.append(Send(others, schemas.PeerJoined(peer=self._peer(m))))
        m.conn += 1
        m.connected, m.away_since_ms = True, None
        m.clock = ClockSync(max_age_ms=self.s.max_sample_age_ms)
        m.next_ping_ms, m.fast_pings_left = now_ms, FAST_PINGS
        m.ice_at_ms = now_ms
        self._out.append(Send((m.id,), schemas.Welcome(
            you=self._member_view(m, now_ms),
            peers=[self._peer(o) for o in self._connected() if o.id != m.id],
            ice_servers=ice.ice_servers(self.s, m.id),
            ice_transport_policy=self.s.ice_transport_policy, judge=self.cfg.to_dict(),
            limits={"max_msg_bytes": self.s.max_msg_bytes,
                    "max_signal_bytes": self.s.max_signal_bytes,
                    "msg_rate_per_s": self.s.msg_rate_per_s, "score_hz": SCORE_HZ},
            watch_key=self.watch_key if m.role == "player" else None)))
        self._pings(now_ms)
        self._dirty = True
        self.last_active_ms = now_ms
        return self._flush(now_ms)

    def disconnect(self, member_id: str, conn: int, now_ms: float) -> list[Output]:
        """Socket `conn` of this member closed; its grace period starts."""
        m = self.members.get(member_id)
        if m is None or not m.connected or m.conn != conn:
            return self._flush(now_ms)  # already gone, or an old socket of a replaced seat
        m.connected, m.away_since_ms, m.clock = False, now_ms, None
        self._out.append(Send(tuple(o.id for o in self._connected()), schemas.PeerLeft(id=m.id)))
        if self.phase == "countdown" and self._is_match_player(m):
            self._enter("paused", now_ms, self.s.grace_ms)
        self._dirty = True
        self.last_active_ms = now_ms
        return self._flush(now_ms)

    # --- messages --------------------------------------------------------------------------

    def handle(self, member_id: str, msg: schemas.In, now_ms: float) -> list[Output]:
        """One validated client message from a connected member."""
        m = self.members[member_id]
        if isinstance(msg, schemas.Score):
            self._score(m, msg, now_ms)
        elif isinstance(msg, schemas.Pong):
            assert m.clock is not None
            m.clock.pong(msg.server_ms, msg.t_ms, now_ms)
        elif isinstance(msg, schemas.Ready):
            self._ready(m, msg.ready, now_ms)
        elif isinstance(msg, schemas.Signal):
            self._signal(m, msg)
        elif isinstance(msg, schemas.Leave):
            self._send_off(m, 1000, "left", now_ms)
        elif isinstance(msg, schemas.SpectatingIn):
            self._set_spectating(m, msg.mode)
        elif isinstance(msg, schemas.Rules):
            self._rules(m, msg)
        elif isinstance(msg, schemas.Kick):
            self._kick(m, msg.member, now_ms)
        elif isinstance(msg, schemas.Media):
            m.mic, m.camera, m.camera_error = msg.mic, msg.camera, msg.camera_error
            self._dirty = True
        elif isinstance(msg, schemas.React):
            self._react(m, msg.emoji, now_ms)
        elif isinstance(msg, schemas.Hello):
            self._error(m, "bad_message", "hello was already accepted on this connection")
        self.last_active_ms = now_ms
        return self._flush(now_ms)

    def _send_off(self, m: Member, code: int, reason: str, now_ms: float) -> None:
        """The member leaves now (asked to, or kicked): peers drop the call, socket closes."""
        self._out.append(Send(tuple(o.id for o in self._connected() if o.id != m.id),
                              schemas.PeerLeft(id=m.id)))
        self._out.append(Close(m.id, code, reason))
        self._remove(m, now_ms)

    def _host_only(self, m: Member, what: str) -> bool:
        if m.id != self.host:
            self._error(m, "forbidden", f"only the host can {what}")
            return False
        return True

    def _rules(self, m: Member, msg: schemas.Rules) -> None:
        if not self._host_only(m, "change the rules"):
            return
        if msg.rounds_to_win is not None or msg.round_ms is not None:
            if self.in_match:
                self._error(m, "bad_phase", f"a match is running ({self.phase}): the rules "
                                            "change between matches")
                return
            rtw = msg.rounds_to_win or self.rounds_to_win
            if rtw > self.s.max_rounds:
                self._error(m, "bad_message", f"rounds_to_win must be <= the server's "
                                              f"max_rounds ({self.s.max_rounds}), got {rtw}")
                return
            self.rounds_to_win = rtw
            self.round_ms = float(msg.round_ms or self.round_ms)
        if msg.locked is not None:
            self.locked = msg.locked
        self._dirty = True

    def _kick(self, m: Member, target: str, now_ms: float) -> None:
        if not self._host_only(m, "remove someone"):
            return
        victim = self.members.get(target)
        if victim is None or victim.id == m.id:
            self._error(m, "bad_peer", f"no other member {target!r} in this room")
            return
        self._out.append(Send((victim.id,), schemas.Notice(code="kicked",
                                                           names=[m.nickname])))
        self._send_off(victim, 4403, "kicked", now_ms)

    def _react(self, m: Member, emoji: str, now_ms: float) -> None:
        assert m.reactions is not None
        if not m.reactions.take(now_ms):
            self._sample_error(m, "rate_limited", f"at most {self.s.react_burst} reactions at "
                               f"once, {self.s.react_rate_per_s:g} per second", now_ms)
            return
        self._out.append(Send(None, schemas.ReactionOut(sender=m.id, emoji=emoji)))

    def _error(self, m: Member, code: str, message: str) -> None:
        self._out.append(Send((m.id,), schemas.ErrorMsg(code=code, message=message)))

    def _score(self, m: Member, msg: schemas.Score, now_ms: float) -> None:
        if m.role != "player":
            self._error(m, "forbidden", "spectators cannot post scores")
            return
        if msg.player is not None and msg.player != m.id:
            self._error(m, "forbidden", f"you can only post your own scores (you are {m.id}, "
                                        f"the message says {msg.player})")
            return
        assert m.clock is not None
        try:
            t = m.clock.map(msg.t_ms, now_ms)
        except ClockError as e:
            self._sample_error(m, e.code, str(e), now_ms)
            return
        m.last_sample_ms = now_ms
        prob = msg.smile_prob if msg.face else None
        self._straight(m, t, prob, now_ms)
        others = tuple(o.id for o in self._connected() if o.id != m.id)
        self._out.append(Send(others, schemas.ScoreOut(player=m.id, face=msg.face,
                                                       smile_prob=prob)))
        if not self._is_match_player(m):
            return
        if self.phase == "calibrating" and self.match is not None \
                and self.phase_start_ms <= t <= (self.phase_end_ms or t):
            self.match.calib.setdefault(m.id, []).append([t, prob, msg.face])
        elif self.phase == "round" and self.round is not None and m.id in self.round.players \
                and t >= self.round.start_ms:
            try:
                self.round, events = judge.round_update(self.round, m.id, t, prob, msg.face)
            except ValueError as e:  # e.g. older than the committed timeline
                self._sample_error(m, "sample_rejected", f"sample not judged: {e}", now_ms)
                return
            self._judge_events(events)
            self._check_verdict(now_ms)

    # --- straight face, please ------------------------------------------------------------

    def _threshold(self, member_id: str) -> float:
        p = self.match.players.get(member_id) if self.match is not None else None
        return p.threshold if p is not None and p.threshold is not None else self.cfg.threshold

    def _straight(self, m: Member, t: float, prob: float | None, now_ms: float) -> None:
        """Follow this player's run of straight-face samples; a smile during the countdown
        sends the room back to steady (unless steady_max_ms already ran out)."""
        if m.role != "player":
            return
        smiling = prob is not None and prob >= self._threshold(m.id)
        if prob is None or smiling:
            m.straight_since_ms = None
        elif m.straight_since_ms is None or m.last_t_ms is None \
                or t - m.last_t_ms > self.cfg.max_sample_gap_ms:
            m.straight_since_ms = t
        m.last_t_ms = t
        if not self._is_match_player(m):
            return
        if self.phase == "countdown" and smiling and not self.countdown_forced:
            self._enter("steady", now_ms, self.s.steady_max_ms)
        if self.phase == "steady":
            self._check_straight(now_ms)

    def _not_straight(self, now_ms: float) -> list[str]:
        """Match players whose face has not stayed straight for steady_ms (ids)."""
        out = []
        for p in self._active():
            m = self.members.get(p.id)
            if m is None or m.straight_since_ms is None or m.last_t_ms is None \
                    or m.last_t_ms - m.straight_since_ms < self.s.steady_ms \
                    or now_ms - m.last_sample_ms > STREAMING_MS:
                out.append(p.id)
        return out

    def _check_straight(self, now_ms: float) -> None:
        waiting = self._not_straight(now_ms) if self.phase == "steady" else []
        if waiting != self.not_straight:
            self.not_straight = waiting
            self._dirty = True
        if self.phase != "steady":
            return
        if not waiting:
            self.countdown_forced = False
            self._enter("countdown", now_ms, self.s.countdown_ms)
        elif self.phase_end_ms is not None and now_ms >= self.phase_end_ms:
            # they had steady_max_ms to stop smiling: the round starts anyway
            self.countdown_forced = True
            self._out.append(Send(None, schemas.Notice(code="steady_timeout", names=[
                self.members[i].nickname for i in waiting if i in self.members])))
            self._enter("countdown", now_ms, self.s.countdown_ms)
            self.not_straight = []

    def _sample_error(self, m: Member, code: str, message: str, now_ms: float) -> None:
        if now_ms - m.last_error_ms >= SAMPLE_ERROR_EVERY_MS:
            m.last_error_ms = now_ms
            self._error(m, code, message)

    def _ready(self, m: Member, ready: bool, now_ms: float) -> None:
        if m.role != "player":
            self._error(m, "forbidden", "spectators do not play: join the room as a player")
            return
        if self.in_match:
            self._error(m, "bad_phase", f"a match is running ({self.phase}): ready counts "
                                        "only in the lobby or after a match")
            return
        m.ready = ready
        self._dirty = True
        self._maybe_start(now_ms)

    def _set_spectating(self, m: Member, mode: schemas.Spectating) -> None:
        if m.id != self.host:
            self._error(m, "forbidden", "only the room's host decides who may watch")
            return
        self.spectating = mode
        self._dirty = True

    def _signal(self, m: Member, msg: schemas.Signal) -> None:
        peer = self.members.get(msg.to)
        if peer is None or not peer.connected or peer.id == m.id:
            self._error(m, "bad_peer", f"no connected peer {msg.to!r} in this room")
            return
        if m.role == "spectator" and peer.role == "spectator":
            self._error(m, "forbidden", "spectators do not connect to each other")
            return
        cand = msg.candidate.model_dump() if msg.candidate is not None else None
        self._out.append(Send((peer.id,), schemas.SignalOut(
            sender=m.id, kind=msg.kind, sdp=msg.sdp, candidate=cand)))

    # --- time -------------------------------------------------------------------------------

    def tick(self, now_ms: float) -> list[Output]:
        """Advance everything due by `now_ms`: pings, TURN credentials, grace periods, phase
        deadlines, judge."""
        self._pings(now_ms)
        self._refresh_ice(now_ms)
        for m in list(self.members.values()):
            if not m.connected and m.away_since_ms is not None \
                    and now_ms - m.away_since_ms >= self.s.grace_ms:
                self._remove(m, now_ms)
        for _ in range(8):  # several deadlines can fall in one tick
            before = (self.phase, self.phase_start_ms)
            self._phase_tick(now_ms)
            if (self.phase, self.phase_start_ms) == before:
                break
        return self._flush(now_ms)

    def _pings(self, now_ms: float) -> None:
        for m in self._connected():
            if now_ms >= m.next_ping_ms and m.clock is not None:
                m.clock.ping_sent(now_ms)
                self._out.append(Send((m.id,), schemas.Ping(server_ms=now_ms)))
                fast = m.fast_pings_left > 0
                m.fast_pings_left -= fast
                m.next_ping_ms = now_ms + (FAST_PING_MS if fast else PING_EVERY_MS)

    def _refresh_ice(self, now_ms: float) -> None:
        """A member idle in the lobby longer than the credentials live would answer a
        newcomer's call with expired ones (coturn refuses the allocation): renew them at half
        their life."""
        if not (self.s.turn_urls and self.s.turn_secret):
            return
        for m in self._connected():
            if now_ms - m.ice_at_ms >= self.s.turn_ttl_s * 500.0:
                m.ice_at_ms = now_ms
                self._out.append(Send((m.id,), schemas.IceRefresh(
                    ice_servers=ice.ice_servers(self.s, m.id))))

    def _phase_tick(self, now_ms: float) -> None:
        end = self.phase_end_ms
        if self.phase == "calibrating" and end is not None \
                and now_ms >= end + self.s.allowed_delay_ms:
            self._finish_calibration(now_ms)
        elif self.phase == "steady":
            if self._away(now_ms):
                self._enter("paused", now_ms, self.s.grace_ms)
            else:
                self._check_straight(now_ms)
        elif self.phase == "countdown" and end is not None and now_ms >= end:
            self._start_round(end, now_ms)
        elif self.phase == "round" and self.round is not None:
            t = now_ms - self.s.allowed_delay_ms
            if t > self.round.start_ms:
                self.round, events = judge.round_advance(self.round, t)
                self._judge_events(events)
            self._check_verdict(now_ms)
        elif self.phase == "verdict" and end is not None and now_ms >= end:
            self._next_round(end, now_ms)
        elif self.phase == "paused":
            self._resume_if_paused(now_ms)

    # --- the match ---------------------------------------------------------------------------

    def _connected(self) -> list[Member]:
        return [m for m in self.members.values() if m.connected]

    def _is_match_player(self, m: Member) -> bool:
        return (self.in_match and self.match is not None and m.id in self.match.players
                and self.match.players[m.id].status == "active")

    def _active(self) -> list[MatchPlayer]:
        assert self.match is not None
        return [p for p in self.match.players.values() if p.status == "active"]

    def _enter(self, phase: schemas.Phase, start_ms: float, length_ms: float | None = None) -> None:
        self.phase, self.phase_start_ms = phase, start_ms
        self.phase_end_ms = None if length_ms is None else start_ms + length_ms
        self._dirty = True

    def _maybe_start(self, now_ms: float) -> None:
        players = self.players
        if len(players) < 2 or not all(p.connected and p.ready for p in players):
            return
        self.n_matches += 1
        self.match = Match(number=self.n_matches, started_ms=now_ms, players={
            p.id: MatchPlayer(id=p.id, nickname=p.nickname, seat=p.seat or 0, key_hash=p.key_hash)
            for p in players})
        for p in players:
            p.ready = False
        self.round_no, self.last_verdict, self.winners = 0, None, []
        self._enter("calibrating", now_ms, self.s.calib_ms)

    def _finish_calibration(self, now_ms: float) -> None:
        assert self.match is not None
        failed = []
        for p in self._active():
            try:
                p.threshold = judge.calibrate(self.match.calib.get(p.id, []), self.cfg)
            except CalibrationError as e:
                failed.append(f"{p.nickname}: {e}")
        if failed:
            self._out.append(Send(None, schemas.ErrorMsg(
                code="calibration_failed",
                message="calibration failed, get ready to try again. " + "; ".join(failed))))
            self.match = None
            self.n_matches -= 1
            self._enter("lobby", now_ms)
            return
        self._enter("steady", now_ms, self.s.steady_max_ms)

    def _away(self, now_ms: float) -> list[str]:
        """Match players not ready to play a round: disconnected, or not streaming."""
        away = []
        for p in self._active():
            m = self.members.get(p.id)
            if m is None or not m.connected or now_ms - m.last_sample_ms > STREAMING_MS:
                away.append(p.id)
        return away

    def _next_round(self, t_ms: float, now_ms: float) -> None:
        if self._away(now_ms):
            self._enter("paused", t_ms, self.s.grace_ms)
        else:
            self._enter("steady", t_ms, self.s.steady_max_ms)

    def _resume_if_paused(self, now_ms: float) -> None:
        if self.phase != "paused":
            return
        away = self._away(now_ms)
        if away and self.phase_end_ms is not None and now_ms >= self.phase_end_ms:
            # connected but silent for a whole grace period (a dead camera or detector):
            # they forfeit the match like a player who never came back
            for pid in away:
                assert self.match is not None
                self.match.players[pid].status = "forfeit"
            self._dirty = True
            if len(self._active()) < 2:
                self._end_match(now_ms)
                return
            away = []
        if not away:
            self._enter("steady", now_ms, self.s.steady_max_ms)

    def _start_round(self, start_ms: float, now_ms: float) -> None:
        active = self._active()
        self.round_no += 1
        self.round = judge.new_round(self.cfg, [(p.id, p.threshold) for p in active],
                                     start_ms, start_ms + self.round_ms)
        self.round_events = []
        for p in active:
            m = self.members.get(p.id)
            if m is not None and m.clock is not None:
                m.clock.lock()  # one offset for the whole round: samples keep their order
        self.countdown_forced = False
        self.not_straight = []
        self._enter("round", start_ms, self.round_ms)

    def _judge_events(self, events: list[dict[str, Any]]) -> None:
        assert self.round is not None
        for ev in events:
            rel = _rel(ev, self.round.start_ms)
            self.round_events.append(rel)
            self._out.append(Send(None, schemas.JudgeEvent(round=self.round_no, event=rel)))

    def _check_verdict(self, now_ms: float) -> None:
        assert self.round is not None and self.match is not None
        rs = self.round
        if not any(rs.offences) and min(t.now_ms for t in rs.trackers) < rs.end_ms:
            return  # nobody offended and the time is not up for everyone: round_verdict
            # would say "pending" (asked on every sample, this was the judge's hot spot)
        v = judge.round_verdict(self.round)
        if v["status"] == "pending":
            return
        rs, t0 = self.round, self.round.start_ms
        losers = [{"player": lo["player"], "nickname": self.match.players[lo["player"]].nickname,
                   "reason": lo["reason"], "offence_ms": lo["offence_ms"] - t0,
                   "peak_prob": lo["peak_prob"]} for lo in v.get("losers", [])]
        loser_ids = {lo["player"] for lo in losers}
        if losers:
            for p in self._active():
                if p.id in rs.players and p.id not in loser_ids:
                    p.score += 1
        # a loser lost by the last event the judge marked as their offence
        marked = {ev["player"]: i for i, ev in enumerate(self.round_events) if ev.get("offence")}
        decisive = {marked[pid] for pid in loser_ids}
        self.match.rounds.append(RoundRecord(
            index=self.round_no, status=v["status"], start_ms=t0 - self.match.started_ms,
            duration_ms=now_ms - t0,
            events=tuple(EventRecord.from_judge(ev, i in decisive)
                         for i, ev in enumerate(self.round_events))))
        self.last_verdict = schemas.VerdictView(round=self.round_no, status=v["status"],
                                                losers=losers)
        for p in rs.players:
            m = self.members.get(p)
            if m is not None and m.clock is not None:
                m.clock.unlock()
        self.round = None
        active = self._active()
        top = max((p.score for p in active), default=0)
        if top >= self.rounds_to_win or self.round_no >= self.s.max_rounds or len(active) < 2:
            self._end_match(now_ms)
        else:
            self._enter("verdict", now_ms, self.s.verdict_ms)

    def _end_match(self, now_ms: float) -> None:
        assert self.match is not None
        if not self.match.rounds:
            self._abandon(now_ms)
            return
        active = self._active()
        top = max((p.score for p in active), default=0)
        winners = [p.id for p in active if p.score == top] if active else []
        if len(winners) == len(active) and len(active) > 1:
            winners = []  # everybody level: a drawn match
        self.winners = winners
        self.records.append(MatchRecord(
            room_code=self.code, number=self.match.number,
            duration_ms=now_ms - self.match.started_ms, rounds_to_win=self.rounds_to_win,
            players=tuple(PlayerRecord(
                id=p.id, nickname=p.nickname, seat=p.seat, score=p.score, threshold=p.threshold,
                key_hash=p.key_hash, result="forfeit" if p.status == "forfeit" else
                "win" if p.id in winners else "draw" if not winners else "loss")
                for p in self.match.players.values()),
            rounds=tuple(self.match.rounds), winners=tuple(winners)))
        self.round = None
        for m in self.players:
            m.ready = False
        self._enter("match_over", now_ms)

    def _abandon(self, now_ms: float) -> None:
        """No round was decided (someone left during calibration or before the first
        verdict): nobody won anything, so nothing is stored; back to the lobby."""
        assert self.match is not None
        gone = [p.nickname for p in self.match.players.values() if p.status == "forfeit"]
        self._out.append(Send(None, schemas.Notice(code="match_abandoned", names=gone)))
        self.match, self.round = None, None
        self.n_matches -= 1
        self.round_no, self.last_verdict, self.winners = 0, None, []
        for m in self.players:
            m.ready = False
        self._enter("lobby", now_ms)

    def stored(self, number: int, match_id: int, now_ms: float) -> list[Output]:
        """The hub stored match `number` as `match_id` (the page links to it)."""
        if self.match is not None and self.match.number == number:
            self.match.id = match_id
            self._dirty = True
        return self._flush(now_ms)

    def take_records(self) -> list[MatchRecord]:
        out, self.records = self.records, []
        return out

    def _remove(self, m: Member, now_ms: float) -> None:
        """A member leaves for good (asked to, or its grace ran out)."""
        del self.members[m.id]
        if self.host == m.id:  # the oldest player takes over, else the oldest member
            rest = [o for o in self.members.values() if o.role == "player"] \
                or list(self.members.values())
            self.host = rest[0].id if rest else None
        self._dirty = True
        if not self.in_match:
            self._maybe_start(now_ms)  # perhaps the only one not ready has left
            return
        assert self.match is not None
        p = self.match.players.get(m.id)
        if p is None or p.status != "active":
            return
        p.status = "forfeit"
        # in a round, the judge already sees no samples from them (absence -> forfeit);
        # the round ends as usual and the match goes on without them
        if self.phase != "round" and len(self._active()) < 2:
            self._end_match(now_ms)
        elif self.phase == "paused":
            self._resume_if_paused(now_ms)

    # --- views -------------------------------------------------------------------------------

    def _peer(self, m: Member) -> schemas.PeerView:
        return schemas.PeerView(id=m.id, role=m.role, nickname=m.nickname)

    def _member_view(self, m: Member, now_ms: float) -> schemas.MemberView:
        p = self.match.players.get(m.id) if self.match is not None else None
        grace = None
        if not m.connected and m.away_since_ms is not None:
            grace = max(0.0, self.s.grace_ms - (now_ms - m.away_since_ms))
        return schemas.MemberView(
            id=m.id, nickname=m.nickname, role=m.role, seat=m.seat, connected=m.connected,
            ready=m.ready, calibrated=p is not None and p.threshold is not None,
            threshold=p.threshold if p else None, score=p.score if p else 0,
            status=p.status if p else "active", grace_left_ms=grace,
            mic=m.mic, camera=m.camera, camera_error=m.camera_error)

    def view(self, now_ms: float) -> schemas.RoomView:
        members = self.players + self.spectators
        left = None if self.phase_end_ms is None else max(0.0, self.phase_end_ms - now_ms)
        length = None if self.phase_end_ms is None else self.phase_end_ms - self.phase_start_ms
        waiting = []
        if self.round is not None:
            # worth showing only once someone has offended: "is anyone else earlier?"
            if any(o is not None for o in self.round.offences):
                waiting = judge.round_verdict(self.round).get("waiting_for", [])
        return schemas.RoomView(
            code=self.code, phase=self.phase, phase_left_ms=left, phase_ms=length,
            round=self.round_no, rounds_to_win=self.rounds_to_win, round_ms=self.round_ms,
            host=self.host, locked=self.locked,
            members=[self._member_view(m, now_ms) for m in members],
            waiting_for=waiting, paused_for=self._away(now_ms) if self.phase == "paused" else [],
            not_straight=self.not_straight if self.phase == "steady" else [],
            last_verdict=self.last_verdict, winners=self.winners,
            match_id=self.match.id
            if self.match is not None and self.phase == "match_over" else None,
            spectating=self.spectating)

    def _flush(self, now_ms: float) -> list[Output]:
        if self._dirty:
            self._dirty = False
            self._out.append(Send(None, schemas.RoomMsg(room=self.view(now_ms))))
        out, self._out = self._out, []
        return out
