"""Models that misbehave only inside a worker process, for the process backend's tests.

In the kernel (the test process) they are plain autoencoders, so the engine's probes pass; in a
spawned worker (``multiprocessing.parent_process()`` is set) ``forward`` faults once the trigger
file exists, deleting it first, so a continued run goes through and must give exact numbers.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from pathlib import Path

import torch
from torch import nn


def in_worker() -> bool:
    """Whether this runs in a spawned worker process."""
    return multiprocessing.parent_process() is not None


class FaultInWorker(nn.Module):
    """A d -> 3 -> d autoencoder (plain forward path) whose worker copy faults on a trigger.

    ``fault``: "raise" (RuntimeError), "exit" (``os._exit(3)``), "segfault" (reads address 0
    through ctypes), "memory" (MemoryError, as an allocation over a limit raises) or "sleep"
    (30 s in every forward call in the worker, no trigger needed).
    """

    def __init__(self, d: int, fault: str, trigger: str | os.PathLike[str] = "") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encode, self.decode = nn.Linear(d, 3), nn.Linear(3, d)
        self.fault, self.trigger = fault, str(trigger)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if in_worker():
            self._maybe_fault()
        return self.decode(torch.tanh(self.encode(x)))

    def _maybe_fault(self) -> None:
        if self.fault == "sleep":
            if self.trigger:
                Path(self.trigger).touch()  # says "inside a forward call now"
            time.sleep(30)
            return
        trigger = Path(self.trigger)
        if not self.trigger or not trigger.exists():
            return
        trigger.unlink()
        if self.fault == "raise":
            raise RuntimeError("the model failed in the worker")
        if self.fault == "memory":
            raise MemoryError("the model asked for more memory than allowed")
        if self.fault == "exit":
            os._exit(3)
        if self.fault == "segfault":
            ctypes.string_at(0)
