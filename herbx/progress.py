"""The run's progress bar on stderr: done/total, success rate, spend and ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from herbx.extraction import Progress as ProgressSink


class Bar(ProgressSink):
    """Draws a rich progress bar; stays quiet when stderr is not a terminal."""

    def __init__(self, console: Console):
        self.console = console
        self.saved = 0
        self.finished = 0
        self._progress = Progress(
            TextColumn("extracting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[spend]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = None

    def start(self, total: int, done: int, spend: float) -> None:
        self._task = self._progress.add_task(
            "run", total=total, completed=done, rate="", spend=_money(spend)
        )
        self._progress.start()

    def advance(self, saved: bool, spend: float) -> None:
        self.finished += 1
        self.saved += int(saved)
        rate = f"{self.saved / self.finished:.0%} ok"
        self._progress.update(self._task, advance=1, rate=rate, spend=_money(spend))

    def warn(self, message: str) -> None:
        if self.console.is_terminal:
            self._progress.console.print(f"warning: {message}", style="yellow")
        else:
            self.console.file.write(f"warning: {message}\n")

    def stop(self) -> None:
        self._progress.stop()


def _money(value: float) -> str:
    return f"${value:.4f}"
