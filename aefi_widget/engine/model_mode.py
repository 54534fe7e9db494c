"""How the engine runs a user's model: eval mode, no autograd (unless asked), one at a time.

Every method enters one of these around each piece of work, never across a generator's
``yield``, so neither eval mode nor inference mode leaks into the user's code between increments,
and every training flag is restored exactly.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["NotDifferentiableError", "computing", "differentiating"]


class NotDifferentiableError(ValueError):
    """The model's output (reconstruction, or code for the latent lens) has no gradient with
    respect to its input: raised by the gradient methods before any long work."""


_MODEL_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = (
    weakref.WeakKeyDictionary()
)
_MODEL_LOCKS_GUARD = threading.Lock()


def _model_lock(model: torch.nn.Module) -> threading.RLock:
    """One lock per model: engines sharing a model (two explorers, a drilldown during a job)
    would otherwise restore train mode in the middle of each other's forward calls."""
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def _eval_mode(model: Any, grad_mode: contextlib.AbstractContextManager[Any]) -> Iterator[None]:
    if not isinstance(model, torch.nn.Module):
        with grad_mode:
            yield
        return
    with _model_lock(model):
        flags = [(m, m.training) for m in model.modules() if m.training]
        try:
            for module, _ in flags:
                module.training = False
            with grad_mode:
                yield
        finally:
            for module, was_training in flags:
                module.training = was_training


def computing(model: Any) -> contextlib.AbstractContextManager[None]:
    """Eval mode plus ``torch.inference_mode`` for one piece of forward-only work."""
    return _eval_mode(model, torch.inference_mode())


def differentiating(model: Any) -> contextlib.AbstractContextManager[None]:
    """Eval mode with autograd on, for gradient methods (gradients flow to inputs only: the
    caller differentiates with ``torch.autograd.grad(..., inputs=x)``, so parameters' ``.grad``
    are never written)."""
    return _eval_mode(model, torch.enable_grad())
