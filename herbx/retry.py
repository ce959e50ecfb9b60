"""The retry policy, in one place: how long to wait, whether to try again, when to stop.

Waits the server asks for (Retry-After, X-RateLimit-Reset) are honoured, clamped in
``openrouter``; otherwise waits grow exponentially with jitter, so that workers that
failed together do not retry together. Failures that no retry can fix stop the run
with a message that says what to do.
"""

from __future__ import annotations

import random
import time

from herbx.errors import RunStopped
from herbx.openrouter import MAX_RETRY_AFTER, Failure, utc_text

LONGEST_BACKOFF = 60.0


class RetryPolicy:
    """Attempts per specimen and the waits between them."""

    def __init__(self, max_attempts: int = 4, backoff: float = 1.0):
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._random = random.Random()

    def again(self, failure: Failure, tries: int) -> bool:
        """Whether a specimen that has failed ``tries`` times may be tried again."""
        return failure.retryable and tries < self.max_attempts

    def delay(self, tries: int, failure: Failure) -> float:
        """The wait the server asked for, else exponential backoff with jitter."""
        if failure.retry_after is not None:
            return failure.retry_after
        if failure.reset_at is not None:
            return min(max(failure.reset_at - time.time(), 0.0), MAX_RETRY_AFTER)
        ceiling = min(self.backoff * 2 ** (tries - 1), LONGEST_BACKOFF)
        return self._random.uniform(ceiling / 2, ceiling)

    def stop(self, failure: Failure, model: str) -> RunStopped:
        """The stop for a failure about the run or the account, with what to do."""
        if failure.reason == "not_found":
            text = (
                f"the endpoint answered 404 for model {model} "
                f"({failure.message}); check --model, then run the same command again"
            )
        elif failure.reason == "insufficient_credits":
            text = (
                f"the account is out of credit ({failure.message}); add credit, then "
                "run the same command again to resume"
            )
        elif failure.reason == "daily_cap":
            when = utc_text(failure.reset_at) if failure.reset_at else "midnight UTC"
            text = (
                f"the free-model daily cap is reached; it resets at {when}. Run the "
                "same command again after that to resume"
            )
        else:
            text = (
                f"{failure.reason}: {failure.message}; fix that, then run the same "
                "command again to resume"
            )
        return RunStopped(text, reason=failure.reason)
