"""The progress bar and the per-epoch line; silent unless asked, never on the hot path's critical cost."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """A rich progress bar showing batches of the current epoch with the running loss and last val loss."""

    def __init__(self, epochs: int, batches: int, enabled: bool):
        self.enabled = enabled
        self.epochs, self.batches = epochs, batches
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
                TimeElapsedColumn(),
                transient=True,
                console=_stderr_console(),
            )
            self._task = self._bar.add_task("train", total=batches, epoch="", loss="-", val="-")
            self._bar.start()

    def start_epoch(self, epoch: int, last_val: str) -> None:
        if self._bar is not None:
            self._bar.reset(
                self._task, total=self.batches, epoch=f"{epoch}/{self.epochs}", loss="-", val=last_val
            )

    def advance(self, n: int, loss: float | None = None) -> None:
        if self._bar is not None:
            fields: dict[str, Any] = {} if loss is None else {"loss": f"{loss:.5f}"}
            self._bar.update(self._task, advance=n, **fields)

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
