"""'Why do they disagree?': sentences drawn from the results and the data, never invented."""

from __future__ import annotations

import numpy as np

from aefi_widget.result import ImportanceResult
from aefi_widget.widget.disagreement import partners, why_they_disagree

NAMES = ("a", "b", "c", "d")


def _result(means: list[float], per_sample: np.ndarray | None = None) -> ImportanceResult:
    importances = np.asarray(means, dtype=np.float64)[:, None] + np.zeros((1, 3))
    extras = {} if per_sample is None else {"per_sample": per_sample}
    return ImportanceResult(
        feature_names=NAMES, output_names=("y",), importances=importances,
        baseline_error=1.0, extras=extras,
    )  # fmt: skip


def test_ranks_partners_and_sign_spread_come_from_the_data() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=200)
    # a and b strongly correlated (r ~ 0.99); c and d independent noise.
    X = np.stack([base, base + 0.1 * rng.normal(size=200), rng.normal(size=200),
                  rng.normal(size=200)], axis=1)  # fmt: skip
    signs = np.where(np.arange(200)[:, None] % 2 == 0, 1.0, -1.0) * np.ones((200, 4))
    results = {
        "permutation": _result([4.0, 1.0, 3.0, 2.0]),  # a is #1
        "gradient": _result([1.0, 4.0, 3.0, 2.0], per_sample=signs),  # a is #4
    }
    why = why_they_disagree("a", results, {"permutation": "Permutation", "gradient": "IG"}, X)
    text = " ".join(why["sentences"])
    assert why["sentences"][0] == "a ranks #1 by Permutation, #4 by IG (of 4)."
    found = partners(X, NAMES, "a")
    assert [name for name, _r in found] == ["b"] and found[0][1] > 0.95
    assert "correlated with 1 other features at |r| ≥ 0.8: b (r = 0.99)" in text
    assert "positive for 50% of 200 samples" in text
    assert why["doc"].startswith("docs/methods.md#")


def test_no_partner_no_shared_credit_claim_and_one_result_no_sentences() -> None:
    X = np.random.default_rng(1).normal(size=(100, 4))
    results = {"p": _result([4.0, 1.0, 3.0, 2.0]), "s": _result([3.0, 1.0, 4.0, 2.0])}
    text = " ".join(why_they_disagree("a", results, {}, X)["sentences"])
    assert "No other feature is correlated with it" in text and "split the credit" not in text
    assert why_they_disagree("a", {"p": results["p"]}, {}, X)["sentences"] == []
