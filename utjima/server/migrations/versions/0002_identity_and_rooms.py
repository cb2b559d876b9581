"""player identity by device key; guests; live room codes for restart notices

- players.key_hash: SHA-256 of the device key a browser keeps (unique; NULL on rows made
  before identities, which the first key to finish a match under that name adopts);
- match_players.player_id may be NULL: a guest (no device key) is in the history, not on
  the leaderboard;
- rooms: the codes live in this server process, so that after a restart a page rejoining
  one hears "the server restarted" instead of "no such room".

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("players") as b:
        b.add_column(sa.Column("key_hash", sa.String(64), nullable=True))
        b.create_unique_constraint("uq_players_key_hash", ["key_hash"])
    with op.batch_alter_table("match_players") as b:
        b.alter_column("player_id", existing_type=sa.Integer, nullable=True)
    op.create_table(
        "rooms",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("restarted", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("rooms")
    with op.batch_alter_table("match_players") as b:
        b.alter_column("player_id", existing_type=sa.Integer, nullable=False)
    with op.batch_alter_table("players") as b:
        b.drop_constraint("uq_players_key_hash", type_="unique")
        b.drop_column("key_hash")
