"""Run keys (an orchestrator's run id per run) and heartbeats on runs and executions.

``runs.run_key`` is unique per pipeline; ``expires`` is when a row whose owner stopped
renewing its heartbeat counts as abandoned; ``node`` is the owner's kernel boot and pid
namespace (`pipeline.metadata.machine_identity`). Rows from before get ``expires`` =
their start, so a RUNNING one left by a killed process is abandoned at once.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def _owner_columns() -> list[sa.Column]:
    return [sa.Column("node", sa.String(200)), sa.Column("heartbeat", TIMESTAMP),
            sa.Column("expires", TIMESTAMP)]


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("run_key", sa.String(200)))
        for column in _owner_columns():
            batch.add_column(column)
    op.create_index("ix_runs_pipeline_run_key", "runs", ["pipeline", "run_key"], unique=True)
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("host", sa.String(200)))
        batch.add_column(sa.Column("pid", sa.Integer))
        for column in _owner_columns():
            batch.add_column(column)
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("node", sa.String(200)))
    for table in ("runs", "executions"):
        op.execute(f"UPDATE {table} SET heartbeat = started, expires = started")


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("node")
    with op.batch_alter_table("executions") as batch:
        for name in ("expires", "heartbeat", "node", "pid", "host"):
            batch.drop_column(name)
    op.drop_index("ix_runs_pipeline_run_key", "runs")
    with op.batch_alter_table("runs") as batch:
        for name in ("expires", "heartbeat", "node", "run_key"):
            batch.drop_column(name)
