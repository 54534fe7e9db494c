"""The contract every method follows, and the streaming machinery they share.

A method is an object with ``increments()``: a generator of immutable
:class:`~aefi_widget.result.ImportanceResult` snapshots, one per chunk of work, that can stop at
any yield and continue later from the last snapshot's resume state with identical numbers.
:class:`Engine` writes that contract down (``Job`` and ``Explorer`` accept anything that follows
it); :class:`IncrementalMethod` implements checkpoints, ``rounds()`` and ``run()`` once, on top of
three things a method provides: ``empty_result()``, ``identity()`` and ``compute(resume)``.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aefi_widget.engine.checkpoint import check_checkpoint_path, load_checkpoint, save_checkpoint
from aefi_widget.result import ImportanceResult

__all__ = ["Engine", "IncrementalMethod"]


@runtime_checkable
class Engine(Protocol):
    """What ``Job`` and ``Explorer`` need of a method.

    ``increments(resume)`` yields snapshots of shape (F, R) with ``evaluations_done`` growing
    to ``evaluations_total``; it stops within one chunk's time (< 1 s) of the consumer stopping
    iteration, and ``increments(resume=snapshot)`` continues exactly.
    """

    feature_names: tuple[str, ...]

    @property
    def evaluations_total(self) -> int: ...

    def empty_result(self) -> ImportanceResult: ...

    def increments(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]: ...


class IncrementalMethod(ABC):
    """Checkpoints, ``rounds()`` and ``run()`` for a method that implements ``compute``.

    Subclasses set ``checkpoint`` (a Path or None), ``checkpoint_every`` (seconds), ``progress``
    (a tqdm bar in :meth:`run`) and ``description`` (the bar's label).
    """

    checkpoint: Path | None = None
    checkpoint_every: float = 5.0
    progress: bool = False
    description: str = "importance"
    # Whether ``compute`` yields a snapshot at the end of every round a chunk finishes (for
    # ``rounds()`` and live views) or only after each chunk: :meth:`run`, which keeps only the
    # last, turns it off (50 extra snapshots cost ~2.5 ms of the forum recipe's ~10 ms).
    round_snapshots: bool = True

    # ------------------------------------------------------------------ what a method provides
    @property
    @abstractmethod
    def evaluations_total(self) -> int:
        """Work units of the whole run (for progress)."""

    @abstractmethod
    def empty_result(self) -> ImportanceResult:
        """A snapshot with nothing computed (all-NaN estimates)."""

    @abstractmethod
    def identity(self) -> dict[str, str]:
        """Digests of everything that fixes the numbers (model, outputs, data, settings)."""

    @abstractmethod
    def compute(self, resume: ImportanceResult | None) -> Iterator[ImportanceResult]:
        """Yield snapshots from the start or from ``resume`` (checked by the method first)."""

    def compute_on(
        self, resume: ImportanceResult | None, client: Any
    ) -> Iterator[ImportanceResult]:
        """:meth:`compute` with its chunks on a Dask ``client``; methods that can override it."""
        raise NotImplementedError(f"{type(self).__name__} does not run on a Dask cluster yet")

    # ------------------------------------------------------------------ shared machinery
    def set_checkpoint(self, checkpoint: str | os.PathLike[str] | None, every: float = 5.0) -> None:
        """Record the checkpoint path (checked now: a bad path fails before any work)."""
        if isinstance(every, bool) or not isinstance(every, int | float) or not every >= 0:
            raise ValueError(f"checkpoint_every must be >= 0 seconds, got {every!r}")
        self.checkpoint = None if checkpoint is None else check_checkpoint_path(checkpoint)
        self.checkpoint_every = float(every)

    def increments(
        self,
        resume: ImportanceResult | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        client: Any = None,
    ) -> Iterator[ImportanceResult]:
        """Yield a snapshot after every chunk of work, continuing from ``resume`` when given.

        Each snapshot is immutable; unfinished estimates show as NaN. Stop iterating at any time:
        the last snapshot's ``resume`` lets a later call continue with identical numbers.
        ``checkpoint`` (a path) overrides the engine's own for this run: resumed from when it
        exists and belongs to this run, written every ``checkpoint_every`` seconds and when the
        generator ends, fails or is closed. ``client`` (a ``dask.distributed.Client``) computes
        the chunks on that cluster for this run, with the same numbers.
        """
        path = self.checkpoint if checkpoint is None else check_checkpoint_path(checkpoint)
        if resume is None and path is not None and path.exists():
            resume = load_checkpoint(path, self.identity())
        snapshots = self.compute(resume) if client is None else self.compute_on(resume, client)
        if path is None:
            snapshot = None
            for snapshot in snapshots:
                yield snapshot
        else:
            snapshot = yield from self._saving(snapshots, path)
        if snapshot is None and resume is not None:
            # A finished run (e.g. a checkpoint's) has no chunk left: say its result once, so a
            # Job resumed from the file shows it rather than an empty result (the file stays).
            yield self.finished(resume)

    def _saving(
        self, snapshots: Iterator[ImportanceResult], path: Path
    ) -> Generator[ImportanceResult, None, ImportanceResult | None]:
        """``snapshots``, saved to ``path`` every ``checkpoint_every`` seconds and at the end;
        returns the last one (None when there was none)."""
        last_saved = time.monotonic()
        snapshot = None
        try:
            for snapshot in snapshots:
                if time.monotonic() - last_saved >= self.checkpoint_every:
                    save_checkpoint(path, snapshot)
                    last_saved = time.monotonic()
                yield snapshot
        finally:
            # Also on errors and on close() (cancel): keep every finished chunk.
            if snapshot is not None:
                save_checkpoint(path, snapshot)
        return snapshot

    def rounds(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
        """Yield a snapshot each time a round completes (every unit has one more estimate)."""
        done = 0 if resume is None else resume.rounds_done
        for snapshot in self.increments(resume):
            if snapshot.rounds_done > done:
                done = snapshot.rounds_done
                yield snapshot

    def run(self, resume: ImportanceResult | None = None) -> ImportanceResult:
        """Compute everything and return the final result (resuming a checkpoint if present)."""
        if resume is None and self.checkpoint is not None and self.checkpoint.exists():
            resume = load_checkpoint(self.checkpoint, self.identity())
        last = resume if resume is not None else self.empty_result()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.evaluations_total, unit="eval", desc=self.description)
            bar.update(last.evaluations_done)
        self.round_snapshots = False
        try:
            for snapshot in self.increments(resume):
                if bar is not None:
                    bar.update(snapshot.evaluations_done - last.evaluations_done)
                last = snapshot
        finally:
            self.round_snapshots = True
            if bar is not None:
                bar.close()
        if resume is not None and last is resume:
            # Nothing was left to compute: the snapshot as this run would report it.
            last = self.finished(resume)
        return last

    def finished(self, resume: ImportanceResult) -> ImportanceResult:
        """The result of a run that ``resume`` (already checked) completes, as this engine
        reports it; by default ``resume`` itself."""
        return resume

