"""Storage: SQLAlchemy 2.0 models, migrations at startup, history and leaderboard queries.

SQLite at `<data_dir>/utjima.db` by default; any SQLAlchemy URL (PostgreSQL:
`postgresql+psycopg://user:pass@host/db`, needs the `scale` extra) with `--database-url`.
The schema is created and upgraded by the Alembic migrations in `migrations/` (applied at
startup, `upgrade head`), never by `create_all`, so a database always sits on a known
revision. The tables:

  players        one row per player identity (a device key's SHA-256) with the nickname
                 it uses now; a nickname (schemas.name_key) belongs to one identity
  matches        a finished match: room, times, rules
  match_players  who played a match: seat, nickname then, score, result, threshold
  rounds         each round: status (loss/draw), start and duration
  laugh_events   the judge's events of a round (laugh_start, laugh_confirmed, laugh_end,
                 face_lost, face_back, absent_forfeit); `decisive` marks the offence
                 that lost the round
  rooms          room codes live in this process (marked `restarted` at the next start)

All calls are synchronous (the hub runs them in a worker thread).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    case,
    create_engine,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

from utjima.server import schemas
from utjima.server.records import MatchRecord, PlayerRecord
from utjima.utils import UtjimaError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


RESTARTED_KEEP = timedelta(days=1)  # how long a restarted room's code is remembered


class StoreError(UtjimaError):
    """The database cannot be opened or migrated (a bad URL, an unwritable folder, a file
    that is not a database)."""


class Player(Base):
    __tablename__ = "players"
    __table_args__ = (UniqueConstraint("key_hash", name="uq_players_key_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the device key; NULL for a row from before identities (adopted by the
    # first key that finishes a match under its name)
    key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name_key: Mapped[str] = mapped_column(String(40), unique=True)  # schemas.name_key
    nickname: Mapped[str] = mapped_column(String(40))  # as last written
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LiveRoom(Base):
    __tablename__ = "rooms"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    restarted: Mapped[bool] = mapped_column(Boolean, default=False)  # live at a restart


class Match(Base):
    __tablename__ = "matches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_code: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    rounds_to_win: Mapped[int] = mapped_column(Integer)
    n_rounds: Mapped[int] = mapped_column(Integer)
    players: Mapped[list[MatchPlayer]] = relationship(
        back_populates="match", order_by="MatchPlayer.seat", cascade="all, delete-orphan")
    rounds: Mapped[list[Round]] = relationship(
        back_populates="match", order_by="Round.index", cascade="all, delete-orphan")


class MatchPlayer(Base):
    __tablename__ = "match_players"
    __table_args__ = (UniqueConstraint("match_id", "seat"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"), index=True,
                                                  nullable=True)  # None: a guest
    seat: Mapped[int] = mapped_column(Integer)
    nickname: Mapped[str] = mapped_column(String(40))
    score: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(8))  # win | loss | draw | forfeit
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    match: Mapped[Match] = relationship(back_populates="players")


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("match_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)  # 1-based
    status: Mapped[str] = mapped_column(String(8))  # loss | draw
    start_ms: Mapped[float] = mapped_column(Float)  # since the match started
    duration_ms: Mapped[float] = mapped_column(Float)
    match: Mapped[Match] = relationship(back_populates="rounds")
    events: Mapped[list[LaughEvent]] = relationship(
        order_by="LaughEvent.id", cascade="all, delete-orphan")


class LaughEvent(Base):
    __tablename__ = "laugh_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    match_player_id: Mapped[int] = mapped_column(
        ForeignKey("match_players.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    t_ms: Mapped[float] = mapped_column(Float)  # since the round started
    start_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_prob: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decisive: Mapped[bool] = mapped_column(Boolean, default=False)  # the offence that lost
    match_player: Mapped[MatchPlayer] = relationship()


# load a match with everything its view needs in a few queries, not one per row
_EAGER = (selectinload(Match.players),
          selectinload(Match.rounds).selectinload(Round.events).selectinload(LaughEvent.match_player))


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return repr(url[:80])


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema revision (alembic `upgrade head`)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """The database behind history and leaderboard. `Store(url)` migrates at once."""

    def __init__(self, url: str) -> None:
        """Open and migrate; raises StoreError, in one line, when that cannot be done."""
        try:
            u = make_url(url)
            kwargs: dict[str, Any] = {}
            if u.get_backend_name() == "sqlite":
                if u.database and u.database != ":memory:":
                    folder = Path(u.database).parent
                    folder.mkdir(parents=True, exist_ok=True)
                    if not os.access(folder, os.W_OK):
                        raise StoreError(f"the database folder {folder} is not writable")
                kwargs["connect_args"] = {"check_same_thread": False}
            self.url = _safe(url)  # for messages: no password
            self.engine = create_engine(url, **kwargs)
            migrate(self.engine)
        except StoreError:
            raise
        except (OSError, SQLAlchemyError, ArgumentError, ValueError) as e:
            raise StoreError(f"cannot open the database {_safe(url)}: "
                             f"{_first_line(e)}") from None

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ----------------------------------------------------------------------------

    def _player(self, s: Session, rec: PlayerRecord, now: datetime) -> Player | None:
        """The identity this result counts for, or None (a guest, or a name another
        identity holds): the nickname goes with the identity, so renaming frees the old."""
        if rec.key_hash is None:
            return None
        key = schemas.name_key(rec.nickname)[:40]
        me = s.scalar(select(Player).where(Player.key_hash == rec.key_hash))
        holder = s.scalar(select(Player).where(Player.name_key == key))
        if holder is not None and holder is not me:
            if holder.key_hash is not None or me is not None:
                return me if holder.key_hash is None else None
            holder.key_hash = rec.key_hash  # a row from before identities: adopted
            me = holder
        if me is None:
            me = Player(key_hash=rec.key_hash, name_key=key, nickname=rec.nickname,
                        created_at=now)
            s.add(me)
        else:
            me.name_key, me.nickname = key, rec.nickname
        s.flush()
        return me

    def name_holder(self, name_key: str) -> str | None:
        """The key hash that holds this name (schemas.name_key), or None when nobody does
        (or only a row from before identities)."""
        with Session(self.engine) as s:
            return s.scalar(select(Player.key_hash).where(Player.name_key == name_key[:40]))

    # --- live rooms (restart notices) --------------------------------------------------------

    def rooms_changed(self, opened: list[str], closed: list[str],
                      now: datetime | None = None) -> None:
        """Record codes that went live and codes that closed normally."""
        now = now or datetime.now(timezone.utc)
        with Session(self.engine) as s, s.begin():
            for code in opened:
                s.merge(LiveRoom(code=code, opened_at=now, restarted=False))
            if closed:
                s.execute(delete(LiveRoom).where(LiveRoom.code.in_(closed)))

    def restarted_rooms(self, now: datetime | None = None) -> set[str]:
        """At startup: every code still live belonged to the previous run; mark them
        restarted (forgotten after RESTARTED_KEEP) and return them."""
        now = now or datetime.now(timezone.utc)
        with Session(self.engine) as s, s.begin():
            s.execute(update(LiveRoom).values(restarted=True))
            s.execute(delete(LiveRoom).where(LiveRoom.opened_at < now - RESTARTED_KEEP))
            return set(s.scalars(select(LiveRoom.code)))

    def save_match(self, rec: MatchRecord, ended_at: datetime | None = None) -> int:
        """Store a finished match; returns the match id. A match without a decided round
        is nobody's win and is refused (the room abandons it instead)."""
        if not rec.rounds:
            raise ValueError(f"match {rec.number} of room {rec.room_code} has no decided "
                             "round: an abandoned match is not stored")
        ended = ended_at or datetime.now(timezone.utc)
        started = ended - timedelta(milliseconds=rec.duration_ms)
        with Session(self.engine) as s, s.begin():
            m = Match(room_code=rec.room_code, started_at=started, ended_at=ended,
                      rounds_to_win=rec.rounds_to_win, n_rounds=len(rec.rounds))
            s.add(m)
            by_id: dict[str, MatchPlayer] = {}
            for p in rec.players:
                who = self._player(s, p, ended)
                mp = MatchPlayer(player_id=who.id if who else None, seat=p.seat,
                                 nickname=p.nickname, score=p.score, result=p.result,
                                 threshold=p.threshold)
                m.players.append(mp)
                by_id[p.id] = mp
            for r in rec.rounds:
                rnd = Round(index=r.index, status=r.status, start_ms=r.start_ms,
                            duration_ms=r.duration_ms)
                m.rounds.append(rnd)
                rnd.events.extend(LaughEvent(
                    match_player=by_id[ev.player], type=ev.type, t_ms=ev.t_ms,
                    start_ms=ev.start_ms, end_ms=ev.end_ms, peak_prob=ev.peak_prob,
                    reason=ev.reason, decisive=ev.decisive) for ev in r.events)
            s.flush()
            return m.id

    # --- reading ----------------------------------------------------------------------------

    def _match_out(self, m: Match, with_events: bool) -> schemas.MatchOut:
        rounds = []
        for r in m.rounds:
            losers = [e for e in r.events if e.decisive]
            rounds.append(schemas.RoundOut(
                index=r.index, status=r.status, duration_ms=r.duration_ms,
                losers=[e.match_player.nickname for e in losers],
                reason=losers[0].reason or "laugh" if losers else None,
                events=[schemas.LaughEventOut(
                    nickname=e.match_player.nickname, type=e.type, t_ms=e.t_ms,
                    start_ms=e.start_ms, end_ms=e.end_ms, peak_prob=e.peak_prob,
                    reason=e.reason, decisive=e.decisive) for e in r.events]
                if with_events else []))
        return schemas.MatchOut(
            id=m.id, room_code=m.room_code, started_at=_iso(m.started_at),
            ended_at=_iso(m.ended_at), rounds_to_win=m.rounds_to_win,
            winners=[p.nickname for p in m.players if p.result == "win"],
            players=[schemas.MatchPlayerOut(nickname=p.nickname, seat=p.seat, score=p.score,
                                            result=p.result, threshold=p.threshold)
                     for p in m.players],
            rounds=rounds)

    def list_matches(self, limit: int = 20, offset: int = 0) -> list[schemas.MatchOut]:
        with Session(self.engine) as s:
            ms = s.scalars(select(Match).options(*_EAGER).where(Match.n_rounds > 0)
                           .order_by(Match.ended_at.desc(), Match.id.desc())
                           .limit(limit).offset(offset)).all()
            return [self._match_out(m, with_events=False) for m in ms]

    def get_match(self, match_id: int) -> schemas.MatchOut | None:
        with Session(self.engine) as s:
            m = s.get(Match, match_id, options=_EAGER)
            return None if m is None or not m.n_rounds else self._match_out(m, with_events=True)

    def leaderboard(self, limit: int = 50) -> list[schemas.LeaderRow]:
        with Session(self.engine) as s:
            wins = func.sum(case((MatchPlayer.result == "win", 1), else_=0))
            rows = s.execute(
                select(Player.id, Player.nickname, func.count(MatchPlayer.id), wins,
                       func.sum(Match.n_rounds))
                .join(MatchPlayer, MatchPlayer.player_id == Player.id)
                .join(Match, Match.id == MatchPlayer.match_id)
                .where(Match.n_rounds > 0)  # rows an older server stored for abandoned matches
                .group_by(Player.id, Player.nickname)).all()
            laughs = dict(s.execute(
                select(MatchPlayer.player_id, func.count(LaughEvent.id))
                .join(LaughEvent, LaughEvent.match_player_id == MatchPlayer.id)
                .where(LaughEvent.decisive.is_(True))
                .group_by(MatchPlayer.player_id)).all())
        out = [schemas.LeaderRow(nickname=nick, matches=n, wins=int(w or 0),
                                 rounds_played=int(r or 0), laughs=int(laughs.get(pid, 0)),
                                 win_rate=(w or 0) / n if n else 0.0)
               for pid, nick, n, w, r in rows]
        out.sort(key=lambda r: (-r.wins, -r.win_rate, r.laughs, r.nickname.casefold()))
        return out[:limit]
