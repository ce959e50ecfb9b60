"""Checking a run's success rate while it runs.

After the first few finished specimens a run whose success rate is too low stops: a
wrong model, prompt or key should cost five requests, not five thousand. Later, every
so many specimens, a low rate is only a warning. Only saved results count as success.
"""

from __future__ import annotations

from dataclasses import dataclass

from herbx import events as ev


@dataclass(frozen=True)
class Thresholds:
    early_after: int = 5
    early_min_rate: float = 0.5
    every: int = 50
    every_min_rate: float = 0.7


@dataclass(frozen=True)
class Verdict:
    """Checkpoints to record, and whether to stop or warn."""

    checkpoints: list[ev.ValidationCheckpoint]
    stop: str | None = None
    warning: str | None = None


def check(limits: Thresholds, done: int, succeeded: int, early_passed: bool) -> Verdict:
    """Return what is due after a specimen finished, with ``done`` finished so far."""
    rate = succeeded / done if done else 0.0
    checkpoints = []
    stop = warning = None

    if limits.early_after > 0 and done >= limits.early_after and not early_passed:
        passed = rate >= limits.early_min_rate
        checkpoints.append(_checkpoint("early", done, succeeded, rate, limits, passed))
        if not passed:
            stop = (
                f"early validation failed: {succeeded} of {done} specimens "
                f"succeeded ({rate:.0%}, below {limits.early_min_rate:.0%}); "
                "check the model, prompt and key with `herbx audit`, then run "
                "the same command again: the failed specimens are tried again "
                "(--validate-after 0 skips the check)"
            )

    if limits.every > 0 and done and done % limits.every == 0:
        passed = rate >= limits.every_min_rate
        checkpoints.append(
            _checkpoint("periodic", done, succeeded, rate, limits, passed)
        )
        if not passed:
            warning = (
                f"success rate {rate:.0%} after {done} specimens is under "
                f"{limits.every_min_rate:.0%}"
            )
    return Verdict(checkpoints, stop, warning)


def _checkpoint(
    kind: str, done: int, succeeded: int, rate: float, limits: Thresholds, passed: bool
) -> ev.ValidationCheckpoint:
    threshold = limits.early_min_rate if kind == "early" else limits.every_min_rate
    return ev.ValidationCheckpoint(
        kind=kind,
        finished=done,
        succeeded=succeeded,
        rate=round(rate, 4),
        threshold=threshold,
        passed=passed,
    )
