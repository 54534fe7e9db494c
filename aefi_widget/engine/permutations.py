"""Counter-based permutations: each one a pure function of (seed, repeat, unit).

Shuffles come from SplitMix64 hashes of (seed, stream, repeat, unit, position), stably argsorted
(:func:`_stable_argsort` computes that order with a faster sort, exactly). Nothing
depends on the order in which work is done, on batch sizes, threads, pausing or on how many other
features exist, so any (feature, repeat) can be recomputed alone (drilldowns, resumed runs).
"""

from __future__ import annotations

import numpy as np

__all__ = ["normalize_seed", "permutation", "permutations", "permutations_of_pairs", "row_orders",
           "row_subset"]  # fmt: skip

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STREAM_PERMUTATION = 1
_STREAM_SUBSET = 2
_STREAM_ROW_ORDER = 3
_ONE_BITS = np.uint64(0x3FF0000000000000)  # float64 1.0
_FAST_SORT_MIN_KEYS = 8192


def normalize_seed(seed: int) -> int:
    """The seed as an unsigned 64-bit integer (negative seeds wrap, as in two's complement)."""
    return int(seed) & _MASK64


def _splitmix64(state: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of ``state + golden`` (uint64 arithmetic wraps by design)."""
    # In place: the same arithmetic as z = (z ^ (z >> 30)) * c1 ..., without a temporary per
    # step (a packed call hashes about a million positions).
    z = state + _GOLDEN
    shifted = z >> np.uint64(30)
    z ^= shifted
    z *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(z, np.uint64(27), out=shifted)
    z ^= shifted
    z *= np.uint64(0x94D049BB133111EB)
    np.right_shift(z, np.uint64(31), out=shifted)
    z ^= shifted
    return z


def _key(*words: int) -> np.uint64:
    """Hash a tuple of integers into one 64-bit key by chained SplitMix64."""
    return _keys(words[:-1], np.array([words[-1]]))[0]


def _keys(prefix: tuple[int, ...], last: np.ndarray) -> np.ndarray:
    """``_key(*prefix, w)`` for every ``w`` in ``last`` (non-negative ints): (len(last),) uint64."""
    with np.errstate(over="ignore"):
        state = np.zeros(1, dtype=np.uint64)
        for word in prefix:
            state = _splitmix64(state ^ np.uint64(int(word) & _MASK64))
        return _splitmix64(state ^ np.asarray(last, dtype=np.int64).astype(np.uint64))


def _uniform_keys(key: np.uint64 | np.ndarray, length: int) -> np.ndarray:
    """``length`` pseudo-random uint64 values per key: SplitMix64 of the counter sequence from
    each key. A scalar key gives (length,), an array of keys (*key.shape, length)."""
    with np.errstate(over="ignore"):
        counters = np.asarray(key, dtype=np.uint64)[..., None] + np.arange(
            length, dtype=np.uint64
        ) * _GOLDEN
        return _splitmix64(counters)


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, axis=-1, kind="stable")`` of (..., length) uint64 keys, as int64.

    A stable argsort is timsort; sorting float64 values uses numpy's SIMD kernels and is about
    5x faster. So each key's top ``52 - b`` bits and its position (``b`` bits, ``2**b >=
    length``) are packed into the mantissa of a float64 in [1, 2), where the float order is the
    integer order, and the floats are sorted: that orders by ``(key >> (12 + b), position)``,
    the stable order of the full keys wherever no two keys of a row share those top bits. Rows
    where two do (they sit side by side once sorted; about one row in 10**7 at length 1,000) are
    argsorted stably as they are, so the result is always exactly the stable argsort.
    """
    length = keys.shape[-1]
    bits = max(1, (length - 1).bit_length())
    # Few keys: the packing's extra passes cost more than they save. Over 2**40 positions: too
    # few key bits left to make ties rare.
    if keys.size < _FAST_SORT_MIN_KEYS or bits > 40:
        return np.argsort(keys, axis=-1, kind="stable")
    low = np.uint64((1 << bits) - 1)
    packed = keys >> np.uint64(12 + bits)
    packed <<= np.uint64(bits)
    packed |= np.arange(length, dtype=np.uint64)
    packed |= _ONE_BITS  # exponent of 1.0: every word is a float64 in [1, 2)
    packed = np.sort(packed.view(np.float64), axis=-1).view(np.uint64)
    high = packed >> np.uint64(bits)
    ties = (high[..., 1:] == high[..., :-1]).any(axis=-1)
    packed &= low
    order = packed.view(np.int64)
    if ties.any():
        order[ties] = np.argsort(keys[ties], axis=-1, kind="stable")
    return order


def permutation(seed: int, repeat: int, unit: int, length: int) -> np.ndarray:
    """The shuffle of ``length`` sample positions used for ``unit`` in ``repeat``: (length,) int64.

    ``result[i]`` is the position whose value moves into position ``i``.
    """
    keys = _uniform_keys(_key(normalize_seed(seed), _STREAM_PERMUTATION, repeat, unit), length)
    return _stable_argsort(keys)


def permutations(seed: int, repeat: int, units: np.ndarray, length: int) -> np.ndarray:
    """``permutation(seed, repeat, u, length)`` for every unit ``u`` in ``units``, computed in
    one vectorised pass (per-unit calls cost ~100 us each): (len(units), length) int64."""
    units = np.asarray(units)
    return permutations_of_pairs(seed, np.full(units.shape, repeat, dtype=np.int64), units, length)


def permutations_of_pairs(
    seed: int, repeats: np.ndarray, units: np.ndarray, length: int
) -> np.ndarray:
    """``permutation(seed, r, u, length)`` for every pair ``(r, u)`` of ``repeats`` and ``units``
    (same shape (k,)), in one vectorised pass: (k, length) int64. The same hash chain as
    :func:`permutation`, element by element; a packed call of 50 repeats hashed repeat by repeat
    spent ~2 ms of the forum recipe's ~10 ms in ~250 tiny numpy calls."""
    per_repeat = _keys((normalize_seed(seed), _STREAM_PERMUTATION), repeats)
    with np.errstate(over="ignore"):
        keys = _splitmix64(per_repeat ^ np.asarray(units, dtype=np.int64).astype(np.uint64))
    return _stable_argsort(_uniform_keys(keys, length))


def row_subset(seed: int, repeat: int, n: int, m: int) -> np.ndarray:
    """The sorted (m,) int64 row indices evaluated in ``repeat`` (all rows when ``m == n``)."""
    if m >= n:
        return np.arange(n, dtype=np.int64)
    keys = _uniform_keys(_key(normalize_seed(seed), _STREAM_SUBSET, repeat), n)
    return np.sort(_stable_argsort(keys)[:m])


def row_orders(seed: int, repeats: np.ndarray, units: np.ndarray, n: int) -> np.ndarray:
    """The order in which a rows race visits the n rows of ``unit`` under the shuffle of
    ``repeat``, for every pair of ``repeats`` and ``units`` (same shape (k,)): (k, n) int64.

    A stream of its own (not the shuffle's), so the rows visited and their donors
    (``permutation(seed, repeat, unit, n)[row]``) are independent; a prefix of the order is a
    sample of rows drawn without replacement, and any block of it can be recomputed alone.
    """
    per_repeat = _keys((normalize_seed(seed), _STREAM_ROW_ORDER), repeats)
    with np.errstate(over="ignore"):
        keys = _splitmix64(per_repeat ^ np.asarray(units, dtype=np.int64).astype(np.uint64))
    return np.argsort(_uniform_keys(keys, n), axis=1, kind="stable").astype(np.int64)
