"""Source code the browser tests put into their notebooks' cells."""

from __future__ import annotations


def at_least(seconds: float) -> str:
    """A cell's definition of ``AtLeast(net)``: the network, each forward call taking at least
    ``seconds``, so a stream lasts a known minimum on any machine (a fast one would end it before
    the page showed its steps); shipped by value to worker processes like any notebook class."""
    return f'''
import time

import torch


class AtLeast(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        started = time.monotonic()
        out = self.net(x)
        time.sleep(max(0.0, {seconds} - (time.monotonic() - started)))
        return out
'''
