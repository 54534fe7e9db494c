"""Protocol v3 requests (method, view, groups, compare_pair, latent_dim) are untrusted input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aefi_widget.widget.messages import (
    ComparePair,
    GroupsChoice,
    InvalidMessage,
    LatentDim,
    MethodChoice,
    RequestContext,
    ViewChoice,
    parse_message,
)

CONTEXT = RequestContext(
    methods=frozenset({"first_look", "permutation", "gradient"}),
    compare_keys=frozenset({"permutation", "gradient"}),
    latent_dims=4,
    has_custom=False,
)
NAMES = {"a": 0, "b": 1}


def _parse(content: Any, context: RequestContext | None = CONTEXT) -> Any:
    return parse_message(content, None, NAMES, 200, context)


VALID = [
    ({"type": "method", "key": "gradient"}, MethodChoice("gradient")),
    ({"type": "view", "name": "compare"}, ViewChoice("compare")),
    ({"type": "view", "name": "latent"}, ViewChoice("latent")),
    ({"type": "groups", "mode": "none"}, GroupsChoice("none", None)),
    ({"type": "groups", "mode": "auto"}, GroupsChoice("auto", None)),
    ({"type": "groups", "mode": "auto", "threshold": 1}, GroupsChoice("auto", 1.0)),
    ({"type": "groups", "mode": "auto", "threshold": 0.55}, GroupsChoice("auto", 0.55)),
    ({"type": "compare_pair", "x": "gradient", "y": "permutation"},
     ComparePair("gradient", "permutation")),
    ({"type": "latent_dim", "index": 3}, LatentDim(3)),
]  # fmt: skip


@pytest.mark.parametrize(("content", "expected"), VALID)
def test_valid_v3_requests_parse(content, expected) -> None:
    assert _parse(content) == expected


BAD = {
    "method unknown": ({"type": "method", "key": "magic"}, "not one of"),
    "method not offered": ({"type": "method", "key": "shapley"}, "not one of"),
    "method not a string": ({"type": "method", "key": 3}, "must be a string"),
    "method missing key": ({"type": "method"}, "must be a string"),
    "method extra field": ({"type": "method", "key": "gradient", "x": 1}, "unexpected"),
    "view unknown": ({"type": "view", "name": "3d"}, "not one of"),
    "view not a string": ({"type": "view", "name": ["compare"]}, "must be a string"),
    "view extra field": ({"type": "view", "name": "compare", "key": "x"}, "unexpected"),
    "groups mode unknown": ({"type": "groups", "mode": "all"}, "not one of"),
    "groups mode missing": ({"type": "groups"}, "must be a string"),
    "groups threshold zero": ({"type": "groups", "mode": "auto", "threshold": 0}, "range"),
    "groups threshold above 1": ({"type": "groups", "mode": "auto", "threshold": 1.5}, "range"),
    "groups threshold negative": ({"type": "groups", "mode": "auto", "threshold": -0.5}, "range"),
    "groups threshold NaN": ({"type": "groups", "mode": "auto", "threshold": math.nan}, "range"),
    "groups threshold bool": ({"type": "groups", "mode": "auto", "threshold": True}, "number"),
    "groups threshold string": ({"type": "groups", "mode": "auto", "threshold": "0.8"},
                                "number"),
    "groups threshold without auto": ({"type": "groups", "mode": "none", "threshold": 0.8},
                                      "only with the 'auto'"),
    "groups custom without custom groups": ({"type": "groups", "mode": "custom"},
                                            "no custom groups"),
    "groups extra field": ({"type": "groups", "mode": "none", "drop": 1}, "unexpected"),
    "compare x unknown": ({"type": "compare_pair", "x": "shapley", "y": "gradient"}, "not one"),
    "compare y missing": ({"type": "compare_pair", "x": "gradient"}, "must be a string"),
    "compare y not a string": ({"type": "compare_pair", "x": "gradient", "y": 1}, "string"),
    "latent index negative": ({"type": "latent_dim", "index": -1}, "out of range"),
    "latent index too large": ({"type": "latent_dim", "index": 4}, "out of range"),
    "latent index float": ({"type": "latent_dim", "index": 1.0}, "integer"),
    "latent index bool": ({"type": "latent_dim", "index": True}, "integer"),
    "latent index string": ({"type": "latent_dim", "index": "1"}, "integer"),
    "latent extra field": ({"type": "latent_dim", "index": 1, "name": "z1"}, "unexpected"),
}  # fmt: skip


@pytest.mark.parametrize(("content", "reason"), BAD.values(), ids=BAD.keys())
def test_bad_v3_requests_are_refused_with_a_reason(content, reason) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        _parse(content)


@pytest.mark.parametrize("content", [c for c, _ in VALID], ids=[str(c) for c, _ in VALID])
def test_without_a_multi_method_explorer_nothing_can_be_asked(content) -> None:
    # A plain Dashboard (one engine, no explorer) offers no methods, keys or dimensions.
    if content["type"] in ("view", "groups") and content.get("mode") != "custom":
        _parse(content, None)  # views and groups modes are fixed words: still well-formed
        return
    with pytest.raises(InvalidMessage):
        _parse(content, None)


def test_custom_groups_are_accepted_when_given() -> None:
    context = RequestContext(has_custom=True)
    assert _parse({"type": "groups", "mode": "custom"}, context) == GroupsChoice("custom", None)


def test_a_dashboard_without_an_explorer_ignores_view_requests_with_a_warning() -> None:
    from aefi_widget.widget import Dashboard

    dashboard = Dashboard(["a", "b"])
    dashboard._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"type": "view", "name": "compare"}}},
         "buffers": []}
    )  # fmt: skip
    assert dashboard.take_requests()[2][1] == 1  # one warning recorded, nothing else
    assert dashboard.view == "importance"
    dashboard.close()
