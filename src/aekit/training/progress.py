"""The progress bar and the per-epoch line; silent unless asked, never on the hot path's critical cost."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """A rich progress bar showing batches of the current epoch with the running loss and last val loss,
    and the time left to the last epoch at the pace of the batches so far ("at most" when ``may_stop``:
    early stopping can end the run sooner)."""

    def __init__(self, epochs: int, batches: int, enabled: bool, may_stop: bool = False):
        self.enabled = enabled
        self.may_stop = may_stop
        self.epochs, self.batches = epochs, batches
        self._bar = None
        self._started: float | None = None  # when this process ran its first batch
        self._done = 0  # batches run by this process (a resumed run counts from its restart)
        self._left = 0  # batches left to the end of the last epoch
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                transient=True,
                console=_stderr_console(),
            )
            self._task = self._bar.add_task("train", total=batches, epoch="", loss="-", val="-", left="")
            self._bar.start()

    def start_epoch(self, epoch: int, last_val: str) -> None:
        self._left = (self.epochs - epoch + 1) * self.batches
        if self._started is None:
            self._started = time.perf_counter()
        if self._bar is not None:
            self._bar.reset(
                self._task,
                total=self.batches,
                epoch=f"{epoch}/{self.epochs}",
                loss="-",
                val=last_val,
                left=self.time_left(),
            )

    def advance(self, n: int, loss: float | None = None) -> None:
        self._done += n
        self._left -= n
        if self._bar is not None:
            fields: dict[str, Any] = {"left": self.time_left()}
            if loss is not None:
                fields["loss"] = f"{loss:.5f}"
            self._bar.update(self._task, advance=n, **fields)

    def time_left(self) -> str:
        """'~1:02:03 left' (or 'at most 1:02:03 left') to the end of the last epoch at the pace so far;
        '' before the first batch."""
        if self._started is None or self._done == 0:
            return ""
        seconds = round((time.perf_counter() - self._started) / self._done * max(self._left, 0))
        clock = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return f"{'at most ' if self.may_stop else '~'}{clock} left"

    def end_epoch(self, record: dict[str, Any]) -> None:
        if self._bar is not None:
            parts = [
                f"{k} {v:.5f}"
                for k, v in record.items()
                if isinstance(v, float) and k not in ("lr", "seconds")
            ]
            self._bar.console.print(
                f"epoch {record['epoch']}/{self.epochs}  "
                + "  ".join(parts)
                + f"  ({record['seconds']:.1f} s)"
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr, soft_wrap=True)
