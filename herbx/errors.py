"""The exception tree of herbx.

Every error a user can cause or fix is a ``HerbxError``; the CLI prints its message as
one line and exits non-zero. Messages name the fix and never contain a secret.
"""


class HerbxError(Exception):
    """Root of every error herbx reports to a user."""

    exit_code = 1


class UsageError(HerbxError):
    """The command line or its inputs are wrong."""

    exit_code = 2


class LedgerError(HerbxError):
    """The ledger cannot be opened, read or written."""


class NotALedger(LedgerError):
    """The file or database exists but was not made by herbx."""


class TamperedLedger(LedgerError):
    """The hash chain or sequence numbers of the ledger do not hold."""


class ImageError(HerbxError):
    """An image cannot be read or prepared; the specimen fails, the run goes on."""


class ApiError(HerbxError):
    """The model endpoint refused or failed a request."""


class RunStopped(HerbxError):
    """A run stopped on purpose (validation, budget, account); it can be resumed."""

    def __init__(self, message: str, reason: str = "stopped"):
        super().__init__(message)
        self.reason = reason
