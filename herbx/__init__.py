"""herbx: an event-sourced extraction ledger for herbarium sheet images.

Every action of an extraction run is an immutable event in a ledger; files, audit
trails, cost tallies and reports are derived from those events.
"""

__version__ = "0.1.0"
