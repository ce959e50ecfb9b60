"""Index events by run and specimen, so a run's backlog is read without a scan.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_run_specimen", "events", ["run_id", "specimen_id", "type"]
    )
