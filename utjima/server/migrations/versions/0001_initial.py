"""initial schema: players, matches, match_players, rounds, laugh_events

Portable DDL only (integers, strings, floats, booleans, timezone-aware timestamps), so
the same revision runs on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "players",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name_key", sa.String(40), nullable=False, unique=True),
        sa.Column("nickname", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "matches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_code", sa.String(16), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("rounds_to_win", sa.Integer, nullable=False),
        sa.Column("n_rounds", sa.Integer, nullable=False),
    )
    op.create_table(
        "match_players",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("match_id", sa.Integer, sa.ForeignKey("matches.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("player_id", sa.Integer, sa.ForeignKey("players.id"), nullable=False, index=True),
        sa.Column("seat", sa.Integer, nullable=False),
        sa.Column("nickname", sa.String(40), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.UniqueConstraint("match_id", "seat"),
    )
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("match_id", sa.Integer, sa.ForeignKey("matches.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("start_ms", sa.Float, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.UniqueConstraint("match_id", "index"),
    )
    op.create_table(
        "laugh_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("match_player_id", sa.Integer,
                  sa.ForeignKey("match_players.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("t_ms", sa.Float, nullable=False),
        sa.Column("start_ms", sa.Float, nullable=True),
        sa.Column("end_ms", sa.Float, nullable=True),
        sa.Column("peak_prob", sa.Float, nullable=True),
        sa.Column("reason", sa.String(16), nullable=True),
        sa.Column("decisive", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    for table in ("laugh_events", "rounds", "match_players", "matches", "players"):
        op.drop_table(table)
