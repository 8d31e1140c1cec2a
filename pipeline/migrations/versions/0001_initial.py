"""The schema before it was versioned: runs, executions, artifacts, events, locks.

A store made by the code of that time has these tables and no ``alembic_version``; only
the tables it lacks are created, so its rows stay.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def _tables() -> dict[str, list]:
    return {
        "runs": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("pipeline", sa.String(200), nullable=False, index=True),
            sa.Column("state", sa.String(20), nullable=False),
            sa.Column("started", TIMESTAMP, nullable=False),
            sa.Column("finished", TIMESTAMP),
            sa.Column("host", sa.String(200)),
            sa.Column("pid", sa.Integer),
            sa.Column("error", sa.Text),
        ],
        "executions": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
            sa.Column("pipeline", sa.String(200), nullable=False),
            sa.Column("component", sa.String(200), nullable=False),
            sa.Column("component_type", sa.String(200), nullable=False),
            sa.Column("state", sa.String(20), nullable=False),
            sa.Column("fingerprint", sa.String(64), index=True),
            sa.Column("parameters", sa.Text),
            sa.Column("started", TIMESTAMP, nullable=False),
            sa.Column("finished", TIMESTAMP),
            sa.Column("cached_from", sa.Integer),
            sa.Column("error", sa.Text),
        ],
        "artifacts": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("type", sa.String(100), nullable=False),
            sa.Column("uri", sa.Text, nullable=False),
            sa.Column("state", sa.String(20), nullable=False),
            sa.Column("properties", sa.Text, nullable=False),
            sa.Column("pipeline", sa.String(200), nullable=False),
            sa.Column("component", sa.String(200), nullable=False),
            sa.Column("output_key", sa.String(200), nullable=False),
            sa.Column("span", sa.Integer),
            sa.Column("created", TIMESTAMP, nullable=False),
        ],
        "events": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("execution_id", sa.Integer, sa.ForeignKey("executions.id"), nullable=False, index=True),
            sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True),
            sa.Column("kind", sa.String(10), nullable=False),
            sa.Column("key", sa.String(200), nullable=False),
        ],
        "locks": [
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("token", sa.String(64), nullable=False),
            sa.Column("host", sa.String(200)),
            sa.Column("pid", sa.Integer),
            sa.Column("run_id", sa.Integer),
            sa.Column("acquired", TIMESTAMP, nullable=False),
            sa.Column("renewed", TIMESTAMP, nullable=False),
            sa.Column("expires", TIMESTAMP, nullable=False),
        ],
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in _tables().items():  # in dependency order
        if name in existing:
            continue
        op.create_table(name, *columns)  # with its ix_<table>_<column> indexes


def downgrade() -> None:
    for name in reversed(list(_tables())):
        op.drop_table(name)
