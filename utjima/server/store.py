"""Storage: SQLAlchemy 2.0 models, migrations at startup, history and leaderboard queries.

SQLite at `<data_dir>/utjima.db` by default; any SQLAlchemy URL (PostgreSQL:
`postgresql+psycopg://user:pass@host/db`, needs the `scale` extra) with `--database-url`.
The schema is created and upgraded by the Alembic migrations in `migrations/` (applied at
startup, `upgrade head`), never by `create_all`, so a database always sits on a known
revision. The tables:

  players        one row per nickname (case-insensitive): the leaderboard's identity
  matches        a finished match: room, times, rules
  match_players  who played a match: seat, nickname then, score, result, threshold
  rounds         each round: status (loss/draw), start and duration
  laugh_events   the judge's events of a round (laugh_start, laugh_confirmed, laugh_end,
                 face_lost, face_back, absent_forfeit); `decisive` marks the offence
                 that lost the round

All calls are synchronous (the hub runs them in a worker thread).
"""

from __future__ import annotations

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
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

from utjima.server import schemas
from utjima.server.records import MatchRecord

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


class Player(Base):
    __tablename__ = "players"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name_key: Mapped[str] = mapped_column(String(40), unique=True)  # casefolded nickname
    nickname: Mapped[str] = mapped_column(String(40))  # as last written
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), index=True)
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
        u = make_url(url)
        kwargs: dict[str, Any] = {}
        if u.get_backend_name() == "sqlite":
            if u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine = create_engine(url, **kwargs)
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ----------------------------------------------------------------------------

    def _player(self, s: Session, nickname: str, now: datetime) -> Player:
        key = nickname.casefold()[:40]
        p = s.scalar(select(Player).where(Player.name_key == key))
        if p is None:
            p = Player(name_key=key, nickname=nickname, created_at=now)
            s.add(p)
            s.flush()
        else:
            p.nickname = nickname
        return p

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
                mp = MatchPlayer(player_id=self._player(s, p.nickname, ended).id, seat=p.seat,
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
