"""Keep glibc from handing each forward call's temporaries back to the OS.

A CPU forward call of a few thousand rows allocates and frees tens of MB of activations. glibc's
``free`` returns memory at the top of the heap to the OS once more than ``M_TRIM_THRESHOLD`` is
free there; that threshold starts small and adapts to twice the largest block freed since (up to
64 MB), see mallopt(3). Until a large block has been freed, every call page-faults its
temporaries back in: on the 2-core benchmark machine about 50,000 page faults per second and 7 to
10 % of the run time (``benchmarks/bench_permutation.py`` prints aefi's page-fault count).

:func:`settle_heap` allocates and frees one block just under 32 MB, once per process. That is
what glibc's own adaptation does after any 32 MB tensor is freed: no allocator setting is changed,
and the process keeps at most 64 MB of freed memory for reuse. Elsewhere it is a harmless
allocation.
"""

from __future__ import annotations

import threading

import torch

__all__ = ["settle_heap"]

# Just below glibc's DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit): a freed block of at most
# that size raises the mmap threshold to its size and the trim threshold to twice that.
_BLOCK_BYTES = 32 * 2**20 - 2**16
_settled = False
_lock = threading.Lock()


def settle_heap() -> None:
    """Allocate and free one ~32 MB block (untouched, so no memory is actually used), once."""
    global _settled
    with _lock:
        if _settled:
            return
        block = torch.empty(_BLOCK_BYTES, dtype=torch.uint8)
        del block
        _settled = True
