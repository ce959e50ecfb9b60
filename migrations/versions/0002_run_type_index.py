"""Index events by run and type, for per-run projections and the audit trail.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_run_type", "events", ["run_id", "type"])
