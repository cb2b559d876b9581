"""Storage (utjima/server/store.py): migrations on a fresh database, the schema they make
equals the models, a match written and read back, the leaderboard. PostgreSQL too when
one can be started here (Debian's `postgresql` package and psycopg); skipped otherwise."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from utjima.server.records import EventRecord, MatchRecord, PlayerRecord, RoundRecord
from utjima.server.store import Base, Store


def ev(player: str, type: str, t_ms: float, start_ms: float, *, peak_prob=None, reason=None,
       decisive=False) -> EventRecord:
    return EventRecord(player=player, type=type, t_ms=t_ms, start_ms=start_ms, end_ms=None,
                       peak_prob=peak_prob, reason=reason, decisive=decisive)


ANA, BO = "a" * 64, "b" * 64  # identities (device key hashes)


def record(winner: str = "Ana", loser: str = "Bo", winner_key: str | None = ANA,
           loser_key: str | None = BO) -> MatchRecord:
    laugh = (ev("m2", "laugh_start", 2000.0, 2000.0, peak_prob=0.8),
             ev("m2", "laugh_confirmed", 2420.0, 2000.0, peak_prob=0.93, decisive=True),
             # the winner laughed too, after the round was lost: an offence, not decisive
             ev("m1", "laugh_confirmed", 5400.0, 5000.0, peak_prob=0.7))
    forfeit = (ev("m2", "face_lost", 2000.0, 1000.0),
               ev("m2", "absent_forfeit", 4000.0, 1000.0, reason="absent", decisive=True))
    return MatchRecord(
        room_code="ABCDEF", number=1, duration_ms=60_000.0, rounds_to_win=2,
        players=(PlayerRecord(id="m1", nickname=winner, seat=0, score=2, result="win",
                              threshold=0.5, key_hash=winner_key),
                 PlayerRecord(id="m2", nickname=loser, seat=1, score=0, result="loss",
                              threshold=0.62, key_hash=loser_key)),
        rounds=(RoundRecord(index=1, status="loss", start_ms=9000.0, duration_ms=3100.0,
                            events=laugh),
                RoundRecord(index=2, status="draw", start_ms=20000.0, duration_ms=30000.0,
                            events=()),
                RoundRecord(index=3, status="loss", start_ms=52000.0, duration_ms=4100.0,
                            events=forfeit)),
        winners=("m1",))


def check_store(store: Store) -> None:
    ended = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
    mid = store.save_match(record(), ended)
    # the same player in another case, against another
    store.save_match(record(winner="ana", loser="Cy", loser_key="c" * 64), ended.replace(hour=13))
    [newest, older] = store.list_matches()
    assert older.id == mid and newest.players[0].nickname == "ana"
    assert older.winners == ["Ana"] and len(older.rounds) == 3
    assert all(r.events == [] for r in older.rounds)  # the list leaves the events out
    assert older.started_at.startswith("2025-05-01T11:59:00")
    assert older.ended_at.startswith("2025-05-01T12:00:00")
    m = store.get_match(mid)
    assert [(p.nickname, p.score, p.result, p.threshold) for p in m.players] == [
        ("Ana", 2, "win", 0.5), ("Bo", 0, "loss", 0.62)]
    assert [(r.index, r.status, r.losers, r.reason) for r in m.rounds] == [
        (1, "loss", ["Bo"], "laugh"), (2, "draw", [], None), (3, "loss", ["Bo"], "absent")]
    confirmed = [e for e in m.rounds[0].events if e.type == "laugh_confirmed"]
    assert [(e.nickname, e.start_ms, e.peak_prob, e.decisive) for e in confirmed] == [
        ("Bo", 2000.0, 0.93, True), ("Ana", 5000.0, 0.7, False)]
    assert (m.rounds[2].events[0].type, m.rounds[2].events[0].start_ms) == ("face_lost", 1000.0)
    assert store.get_match(mid + 100) is None
    board = {r.nickname: r for r in store.leaderboard()}
    assert board["ana"].matches == 2 and board["ana"].wins == 2 and board["ana"].win_rate == 1.0
    assert board["ana"].laughs == 0  # the laugh after the round was lost was not decisive
    assert board["Bo"].laughs == 2 and board["Bo"].wins == 0 and board["Bo"].rounds_played == 3
    assert list(board)[0] == "ana"


def test_migrations_make_a_fresh_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'utjima.db'}"
    store = Store(url)  # creates the folder, runs `upgrade head`
    tables = set(sa.inspect(store.engine).get_table_names())
    assert tables == {"alembic_version", "players", "matches", "match_players", "rounds",
                      "laugh_events", "rooms"}
    with store.engine.connect() as c:
        assert c.execute(sa.text("select version_num from alembic_version")).scalar() == "0002"
    store.close()
    Store(url).close()  # running the migrations again is a no-op


def test_the_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store(f"sqlite:///{tmp_path / 'u.db'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff


def test_a_match_written_and_read_back(tmp_path):
    check_store(Store(f"sqlite:///{tmp_path / 'u.db'}"))


# --- identities: who a result counts for ------------------------------------------------------


def board(store: Store) -> dict[str, tuple[int, int]]:
    return {r.nickname: (r.matches, r.wins) for r in store.leaderboard()}


def test_a_nickname_belongs_to_one_identity(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'u.db'}")
    store.save_match(record())  # Ana (key ANA) beats Bo
    assert board(store) == {"Ana": (1, 1), "Bo": (1, 0)}
    # someone else plays as "Ana" (the join is refused; a race past it is not ranked)
    impostor = store.save_match(record(winner="ana", winner_key="e" * 64))
    assert board(store) == {"Ana": (1, 1), "Bo": (2, 0)}
    assert store.get_match(impostor).players[0].nickname == "ana"  # the history keeps it
    assert store.name_holder("ana") == ANA and store.name_holder("cy") is None
    # a guest (no device key) is in the history, never on the leaderboard
    store.save_match(record(winner="Guest", winner_key=None))
    assert "Guest" not in board(store) and store.list_matches()[0].winners == ["Guest"]
    # renaming takes the identity's row along and frees the old name
    store.save_match(record(winner="Anna", winner_key=ANA))
    assert board(store)["Anna"] == (2, 2) and "Ana" not in board(store)
    assert store.name_holder("ana") is None and store.name_holder("anna") == ANA
    store.save_match(record(winner="Ana", winner_key="e" * 64))
    assert board(store)["Ana"] == (1, 1)  # someone new now
    store.close()


def test_a_row_from_before_identities_is_adopted_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'u.db'}")
    store.save_match(record(winner_key=None))  # as the old store wrote: no key
    with store.engine.begin() as c:  # what migration 0002 leaves of an old row
        c.execute(sa.text("insert into players (name_key, nickname, created_at) "
                          "values ('ana', 'Ana', '2025-01-01')"))
    assert store.name_holder("ana") is None  # nobody holds it yet
    store.save_match(record())
    assert board(store)["Ana"] == (1, 1) and store.name_holder("ana") == ANA
    store.save_match(record(winner_key="e" * 64))
    assert board(store)["Ana"] == (1, 1)
    store.close()


def test_live_rooms_are_remembered_across_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    store = Store(url)
    assert store.restarted_rooms() == set()
    store.rooms_changed(["AAAAAA", "BBBBBB", "CCCCCC"], [])
    store.rooms_changed([], ["BBBBBB"])  # closed normally: forgotten
    store.close()
    store = Store(url)  # the next start
    assert store.restarted_rooms() == {"AAAAAA", "CCCCCC"}
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert store.restarted_rooms(later) == set()  # not remembered for ever
    store.close()


def test_a_match_without_a_round_is_refused_and_old_ones_are_not_shown(tmp_path):
    from dataclasses import replace

    store = Store(f"sqlite:///{tmp_path / 'u.db'}")
    empty = replace(record(), rounds=())
    with pytest.raises(ValueError, match="no decided round"):
        store.save_match(empty)
    # rows an older server wrote for abandoned matches (a "win" at 0-0): never shown
    legacy = store.save_match(record(winner="Farmer", loser="Ghost"))
    with store.engine.begin() as c:
        c.execute(sa.text("update matches set n_rounds = 0 where id = :i"), {"i": legacy})
    real = store.save_match(record())
    assert [m.id for m in store.list_matches()] == [real]
    assert store.get_match(legacy) is None
    assert {r.nickname for r in store.leaderboard()} == {"Ana", "Bo"}


# --- PostgreSQL, when this machine can run one ------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url():
    if os.environ.get("UTJIMA_TEST_POSTGRES_URL"):
        yield os.environ["UTJIMA_TEST_POSTGRES_URL"]
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[scale]')")
    from harness.cluster import Unavailable, postgres

    try:
        server = postgres()
        url = server.__enter__()
    except Unavailable as e:
        pytest.skip(f"{e}, and UTJIMA_TEST_POSTGRES_URL is not set")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.mark.slow
def test_the_same_migrations_on_postgresql(postgres_url):
    store = Store(postgres_url)
    with store.engine.connect() as conn:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    check_store(store)
    store.rooms_changed(["AAAAAA"], [])
    assert store.restarted_rooms() == {"AAAAAA"}
    store.close()
