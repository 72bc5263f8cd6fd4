"""How far a run is and how long is left: one line for the whole run.

``Progress`` counts cells and epochs as the executors report them and estimates the time left
from the run's own pace: every epoch's weight is the mean training time measured so far for its
backend × scenario (else its backend's mean, else the run's), and the time left is the elapsed
wall time scaled by remaining weight over finished weight — so start-up, evaluation and waiting
are counted in the proportion the finished work paid them, and a slow backend's epochs weigh
what they cost. Before the first epoch there is no estimate.

Before the first epoch the estimate is the development machine's (``bench.campaign.priors``),
when every cell was timed there; a backend × scenario not yet run here is weighed by its prior
scaled by this machine's pace on those that ran (else by its backend's mean here, else the run's).

On a terminal the line is a ``tqdm`` bar on stderr, updated in place, and the run's own lines
(``write``) print above it; anywhere else (a pipe, a CI log) it is a plain line on stderr after
every finished cell and at least once a minute while epochs finish. ``quiet``: no line at all.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import IO, Any

from bench.campaign import priors
from bench.cell.spec import CellSpec

#: The longest a non-terminal run goes without a progress line while epochs finish (seconds).
PLAIN_EVERY_S = 60.0


def clock_text(seconds: float) -> str:
    """'45 s', '7 min 05 s', '1 h 02 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Cells and epochs done of ``cells``, elapsed time and the estimate of what is left."""

    def __init__(
        self,
        cells: Sequence[CellSpec],
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
        quiet: bool = False,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock, self.started = clock, clock()
        self.todo = {id(c): c.scenario.epochs for c in cells}  # epochs left, per cell
        self.cells = {id(c): c for c in cells}
        self.total_cells, self.total_epochs = len(cells), sum(self.todo.values())
        self.cells_done = self.epochs_done = 0
        self.finished: Counter[tuple[str, str]] = Counter()  # finished epochs per key
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self.last_plain = self.started
        self.quiet = quiet
        known = priors.load_priors()
        self.prior_machine = known.get("machine_id")
        self.prior_total = priors.estimate(cells, known)
        self.prior_epoch = priors.per_epoch(known)
        if live is None:
            live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = self._bar() if live and cells and not quiet else None
        if self.bar is None and cells:
            self._plain()  # the run's size, before anything trains

    def _bar(self) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=self.total_epochs,
            file=self.stream,
            unit="epoch",
            dynamic_ncols=True,
            bar_format="{desc} |{bar}|",
            desc=self.summary(),
        )

    # --- what the executors report ------------------------------------------------------------

    def epoch(self, cell: CellSpec, seconds: float) -> None:
        """One epoch of ``cell`` finished, its training taking ``seconds``."""
        key = (cell.backend, cell.scenario.name)
        self.seconds.setdefault(key, []).append(seconds)
        self.finished[key] += 1
        if self.todo.get(id(cell), 0) > 0:
            self.todo[id(cell)] -= 1
        self.epochs_done += 1
        if self.bar is not None:
            self.bar.update(1)
            self._refresh()
        elif self.clock() - self.last_plain >= PLAIN_EVERY_S:
            self._plain()

    def cell_done(self, cell: CellSpec) -> None:
        """``cell`` ended (finished, failed, skipped or stopped): its unrun epochs drop out."""
        self.todo[id(cell)] = 0
        self.cells_done += 1
        if self.bar is not None:
            self._refresh()
        else:
            self._plain()

    def write(self, line: str) -> None:
        """A line of the run's own output (stdout), printed above the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self._refresh()
            self.bar.close()
            self.bar = None

    # --- the estimate -------------------------------------------------------------------------

    def _weight(self, key: tuple[str, str]) -> float | None:
        """An epoch's expected training seconds for ``key``, from what was measured so far."""
        if key in self.seconds:
            return statistics.fmean(self.seconds[key])
        paces = [
            statistics.fmean(v) / self.prior_epoch[k]
            for k, v in self.seconds.items()
            if k in self.prior_epoch
        ]
        if key in self.prior_epoch and paces:
            return self.prior_epoch[key] * statistics.median(paces)
        same = [s for (b, _), v in self.seconds.items() if b == key[0] for s in v]
        every = [s for v in self.seconds.values() for s in v]
        return statistics.fmean(same or every) if every else None

    def remaining_seconds(self) -> float | None:
        """Wall seconds left, or None before the first epoch."""
        done = sum(n * (self._weight(k) or 0.0) for k, n in self.finished.items())
        if done <= 0:
            return None
        left = sum(
            n * (self._weight((self.cells[i].backend, self.cells[i].scenario.name)) or 0.0)
            for i, n in self.todo.items()
        )
        return (self.clock() - self.started) * left / done

    def describe(self) -> str:
        return f"{self.cells_done}/{self.total_cells} cells"

    def summary(self) -> str:
        """'3/24 cells, 11/120 epochs, 1 min 05 s elapsed, about 7 min 10 s left'."""
        left = self.remaining_seconds()
        if left is not None:
            eta = f"about {clock_text(left)} left"
        elif self.prior_total is not None:
            eta = f"about {clock_text(self.prior_total)} at {self.prior_machine}'s pace"
        else:
            eta = "estimating what is left"
        return (
            f"{self.describe()}, {self.epochs_done}/{self.total_epochs} epochs, "
            f"{clock_text(self.clock() - self.started)} elapsed, {eta}"
        )

    def _refresh(self) -> None:
        self.bar.set_description_str(self.summary())

    def _plain(self) -> None:
        self.last_plain = self.clock()
        if self.quiet:
            return
        print(f"progress: {self.summary()}", file=self.stream, flush=True)
