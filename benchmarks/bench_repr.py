"""Time a notebook's rich display of a result (``_repr_html_``) at 20,000 features.

The display must stay cheap at any size (the target: under 50 ms at 20,000 features). Printed
per size: the median of ``--repeats`` calls of ``_repr_html_`` and, interleaved in the same
loop as a baseline, of ``summary()`` alone (the sort every display needs), their ratio, and
the HTML's size::

    python benchmarks/bench_repr.py            # 2,000 and 20,000 features, 10 repeats
    python benchmarks/bench_repr.py --features 500 --repeats 3

The result is synthetic (random estimates, 10 repeats per feature, some names with markup):
the display's cost depends on the number of features, not on where the numbers came from.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from aefi_widget import ImportanceResult


def synthetic_result(n_features: int, n_repeats: int = 10, seed: int = 0) -> ImportanceResult:
    """A complete permutation-style result with ``n_features`` features (every 97th named with
    markup, as a hostile column name would be)."""
    rng = np.random.default_rng(seed)
    names = [
        f"<img src=x onerror=alert({i})>" if i % 97 == 0 else f"gene_{i}" for i in range(n_features)
    ]
    estimates = rng.gamma(1.0, 1.0, size=(n_features, 1)) + rng.normal(
        0.0, 0.2, size=(n_features, n_repeats)
    )
    return ImportanceResult(
        names,
        names,
        estimates,
        baseline_error=1.0,
        settings={"method": "permutation", "metric": "mse", "seed": seed},
        evaluations_done=n_features * n_repeats,
        evaluations_total=n_features * n_repeats,
    )


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def measure(n_features: int, repeats: int) -> dict[str, float]:
    """Median seconds of ``_repr_html_`` and of ``summary()``, interleaved, in milliseconds."""
    result = synthetic_result(n_features)
    result._repr_html_()  # warm-up: imports, first-call caches
    display, summary = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        text = result._repr_html_()
        display.append(time.perf_counter() - start)
        start = time.perf_counter()
        result.summary()
        summary.append(time.perf_counter() - start)
    return {
        "features": n_features,
        "repr_ms": _median_ms(display),
        "summary_ms": _median_ms(summary),
        "html_kb": len(text.encode()) / 1024,
    }


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    rows = [measure(n, args.repeats) for n in args.features]
    print(f"{'features':>9} {'_repr_html_':>12} {'summary()':>10} {'ratio':>6} {'HTML':>8}")
    for row in rows:
        print(
            f"{row['features']:>9,} {row['repr_ms']:>9.1f} ms {row['summary_ms']:>7.1f} ms "
            f"{row['repr_ms'] / row['summary_ms']:>6.2f} {row['html_kb']:>5.1f} kB"
        )
    return rows


if __name__ == "__main__":
    main()
