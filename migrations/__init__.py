"""Alembic migrations of the herbx ledger, applied whenever a ledger is opened."""
