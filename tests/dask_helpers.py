"""Shared by the Dask tests: a 2-worker LocalCluster, scheduler counts and worker memory."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
import time
from collections.abc import Callable, Iterator

import cloudpickle
import distributed
import psutil
import reference

# Workers import nothing from tests/: ship this module's and reference's code by value (the
# failing test model, reference.FailingOnCall, travels to the workers).
cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(reference)


@contextlib.contextmanager
def local_cluster() -> Iterator[distributed.Client]:
    """The issue's cluster: 2 worker processes of 1 thread each, no dashboard."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def scheduler_tasks(client: distributed.Client) -> int:
    """Tasks the scheduler knows of (0: nothing pending, running or held)."""
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def _settled_rss() -> int:
    """This process's resident bytes after a collection and glibc's trim (what Dask's own
    worker memory docs do before reading unmanaged memory), so freed heap does not count."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss


def worker_rss(client: distributed.Client) -> dict[str, int]:
    """Every worker's settled resident bytes, by worker address."""
    return client.run(_settled_rss)


def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Whether ``condition()`` holds within ``seconds``, polled."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()
