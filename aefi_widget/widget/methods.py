"""The methods the explorer offers: key -> title, how to build its engine, what it accepts.

Each entry knows the keywords its engine takes (read from the engine's signature, so a new
keyword needs no change here), whether it attributes groups, and how to tell cheaply (from the
model's structure only, never a computation) that it cannot run on this model. The one-shot
lenses (weights, the latent gradient and mutual-information lenses) are wrapped in
:class:`~aefi_widget.one_shot.OneShot` so a Job runs them like any engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aefi_widget.engine import (
    GradientImportance,
    LatentPermutation,
    PermutationImportance,
    ShapleyImportance,
    latent_importance,
    weight_importance,
)
from aefi_widget.engine.latent_encoder import find_encoder
from aefi_widget.engine.latent_permutation import latent_labels
from aefi_widget.engine.rows_race import FIRST_ROWS
from aefi_widget.engine.shared_x import SharedX
from aefi_widget.engine.weights import LABELS as WEIGHT_LABELS
from aefi_widget.engine.weights import first_linear
from aefi_widget.one_shot import OneShot
from aefi_widget.result import ImportanceResult

__all__ = [
    "COMMON_KEYWORDS",
    "FIRST_LOOK_FOR",
    "METHODS",
    "METHOD_KEYS",
    "RACE_TOLERANCE",
    "MethodContext",
    "MethodSpec",
    "RaceFirstStep",
    "check_method",
    "check_options",
    "engine_keywords",
    "first_step_result",
    "race_keywords",
    "unavailable_note",
]

METHOD_KEYS = ("first_look", "permutation", "shapley", "gradient", "latent", "latent_mi", "weights")
# Keywords of the starting method that every other method accepting them gets too.
COMMON_KEYWORDS = ("feature_names", "layer", "metric", "device", "batch_size", "seed", "client")
# Methods slow enough that a first look is worth computing before them.
FIRST_LOOK_FOR = ("permutation", "shapley")
# The first look asks the chosen method's question cheaply: permutation importance, one repeat, on
# a subsample of about FIRST_LOOK_ROWS / units samples (at least FIRST_LOOK_MIN_SAMPLES). Measured
# by the lead (seed-like autoencoder, d=1000, n=950, 5 seeds, vs the 50-repeat run of
# benchmarks/bench_anytime.py): 48 samples take 1.1-1.6 s and find 7-9 of the full top-10 (64
# samples: 1.3-1.5 s, 8-10; ranks 11-20 of the full run differ by less than their noise); 40
# samples: 0.97 s, 8 of the top-10 and 11 of the top-20 (seed 0). In a real page
# (`bench_anytime.py --browser 4`) 48 samples were drawn 1.56-2.22 s after display, 40 samples
# 1.73-1.85 s: 40 keeps the 2 s promise. IG with 2 steps takes 0.2-1.5 s but answers another
# question: it found 0 of the top-20 (the planted features rank 274th-999th by |IG| even with 32
# steps), so as a preview it would mislead.
FIRST_LOOK_ROWS = 40_000
FIRST_LOOK_MIN_SAMPLES = 16
# Those samples are split over FIRST_LOOK_REPEATS repeats, each a fresh shuffle on its own row
# subset, so that every bar has a 95 % interval (Student t over the repeats, 3 degrees of freedom)
# from the first look on, at the same cost: one repeat has no spread to draw, and the engine keeps
# no per-sample errors to draw one from rows. The repeats' spread holds both the rows' and the
# shuffles' noise, which is what the full run's interval measures too.
FIRST_LOOK_REPEATS = 4
# The explorer's permutation run certifies its Top N within this fraction of the N-th importance
# (the rows race, engine/rows_race.py): 10 % is below what a user reads off a bar chart and what
# bench_race_rows.py measures. The keywords that choose another run switch it off.
RACE_TOLERANCE = 0.1
_NOT_A_RACE = ("top_k", "tolerance", "tolerance_scale", "max_samples", "client", "min_repeats")


@dataclass(frozen=True)
class MethodContext:
    """What every factory gets: the user's model and X (never modified), the input names and,
    once one engine has copied X, that copy (:class:`SharedX`) for the next engines to share."""

    model: Any
    X: Any
    input_names: tuple[str, ...]
    shared: SharedX | None = None

    @property
    def source(self) -> Any:
        """What an engine is built from: the shared copy of X when there is one, else X."""
        return self.X if self.shared is None else self.shared


@dataclass(frozen=True)
class MethodSpec:
    """One offered method.

    Attributes
    ----------
    key, title : str
        Selector key (one of METHOD_KEYS) and the words the page shows.
    keywords : frozenset of str
        Keywords its ``options`` may set (``groups`` excluded: that is the explorer's).
    accepts_groups : bool
        Whether it attributes groups of features.
    build : callable(context, keywords, groups) -> Engine
        Builds the engine (validating the keywords: a bad one raises here, before any work).
    """

    key: str
    title: str
    keywords: frozenset[str]
    accepts_groups: bool
    build: Callable[[MethodContext, dict[str, Any], dict[str, list[str]] | None], Any]


def _keywords_of(function: Callable[..., Any], *, drop: tuple[str, ...] = ()) -> frozenset[str]:
    """Keyword parameters of ``function`` a user may set (no private or positional ones)."""
    skip = {"self", "model", "X", "groups", *drop}
    return frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
        and not name.startswith("_")
        and name not in skip
    )


def _with_groups(groups: dict[str, list[str]] | None) -> dict[str, Any]:
    return {} if groups is None else {"groups": groups}


def first_look_samples(n_units: int, n_samples: int) -> int:
    """Samples of each of the first look's FIRST_LOOK_REPEATS repeats: ~FIRST_LOOK_ROWS permuted
    rows in all, at least FIRST_LOOK_MIN_SAMPLES and at most every sample in all (the budget of
    the one-repeat first look this replaced), split over the repeats."""
    wanted = min(n_samples, max(FIRST_LOOK_MIN_SAMPLES, FIRST_LOOK_ROWS // max(1, n_units)))
    return max(1, -(-wanted // FIRST_LOOK_REPEATS))


class FirstLook(PermutationImportance):
    """Permutation importance whose snapshots start once every unit has an interval.

    The first look's first round gives each unit one estimate, which has no spread: streamed,
    its bars would be drawn as a ranking without uncertainty. Its snapshots are yielded from
    the second round on (about half its ~1 s of work), so the page's first bars all carry an
    interval. The numbers are those of :class:`PermutationImportance` with the same keywords.
    """

    def increments(self, resume: Any = None, **keywords: Any) -> Iterator[ImportanceResult]:
        need = min(2, self.n_repeats)
        for snapshot in super().increments(resume, **keywords):
            if snapshot.rounds_done >= need:
                yield snapshot


def race_keywords(keywords: Mapping[str, Any], k: int, n_units: int) -> dict[str, Any] | None:
    """The explorer's default permutation run: ``keywords`` with the rows race for the top
    ``k`` (at most the units) within :data:`RACE_TOLERANCE`, or None when the keywords choose
    another run (any of top_k, tolerance, max_samples, client, min_repeats) or every unit
    would be in the top (nothing to race)."""
    if any(name in keywords for name in _NOT_A_RACE) or k >= n_units:
        return None
    return {**keywords, "top_k": int(k), "tolerance": RACE_TOLERANCE}


class RaceFirstStep(PermutationImportance):
    """The first round of a rows race (every unit's first block of rows, with its bound),
    computed apart on a thread while the worker process starts; the explorer's race then
    continues from its last snapshot, so this work is kept and counted. Same keywords, hence
    the same identity and numbers, as the race's engine."""

    look_title = f"First look: the race's first round ({FIRST_ROWS} rows per unit)"

    def increments(self, resume: Any = None, **keywords: Any) -> Iterator[ImportanceResult]:
        for snapshot in super().increments(resume, **keywords):
            yield snapshot
            state = snapshot.resume
            if state is not None and int(state.position.get("round", 0)) >= 1:
                return


def first_step_result(job: Any) -> ImportanceResult | None:
    """What a race continues from when it starts: its first step's last snapshot, once that
    job stopped computing with work to hand on (None: start afresh)."""
    snapshot = job.snapshot()
    if job.status in ("done", "cancelled", "paused") and snapshot.resume is not None:
        return snapshot
    return None


def _first_look(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    # Units after grouping are fewer than inputs: sizing by inputs errs on the quick side.
    samples = first_look_samples(len(ctx.input_names), _n_rows(ctx.X))
    return FirstLook(
        ctx.model, ctx.source, n_repeats=FIRST_LOOK_REPEATS, max_samples=samples, **keywords,
        **_with_groups(groups),
    )  # fmt: skip


def _permutation(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    return PermutationImportance(ctx.model, ctx.source, **keywords, **_with_groups(groups))


def _shapley(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    return ShapleyImportance(ctx.model, ctx.source, **keywords, **_with_groups(groups))


def _gradient(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    return GradientImportance(ctx.model, ctx.source, **keywords, **_with_groups(groups))


def _names(ctx: MethodContext, keywords: Mapping[str, Any]) -> tuple[str, ...]:
    given = keywords.get("feature_names")
    return ctx.input_names if given is None else tuple(str(name) for name in given)


def _latent(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    keywords = dict(keywords)
    lens = keywords.pop("method", "permutation")
    if lens == "permutation":
        return LatentPermutation(ctx.model, ctx.source, **keywords)
    if lens != "gradient":
        raise ValueError(
            f"options['latent']['method'] must be 'permutation' or 'gradient', got {lens!r} "
            "(mutual information is the method 'latent_mi')"
        )
    return OneShot(
        lambda: latent_importance(ctx.model, ctx.source, method="gradient", **keywords),
        _names(ctx, keywords),
        n_estimates=_n_rows(ctx.X),
        settings={"method": "latent", "latent_method": "gradient"},
        labels=latent_labels("gradient", "mean |∂code/∂x · x|", "sample"),
    )


def _latent_mi(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    return OneShot(
        lambda: latent_importance(ctx.model, ctx.source, method="mutual_information", **keywords),
        _names(ctx, keywords),
        settings={"method": "latent", "latent_method": "mutual_information"},
        labels=latent_labels("mutual_information", "MI (nats)", "estimate"),
    )


def _weights(ctx: MethodContext, keywords: dict[str, Any], groups: Any) -> Any:
    names = _names(ctx, keywords)
    return OneShot(
        lambda: weight_importance(ctx.model, feature_names=names),
        names,
        settings={"method": "weights"},
        labels=WEIGHT_LABELS,
    )


def _n_rows(X: Any) -> int:
    return len(X)


_LATENT_KEYWORDS = _keywords_of(LatentPermutation.__init__) | {"method"}
_ONE_SHOT_LATENT = frozenset({"encoder", "feature_names", "layer", "device", "batch_size"})

METHODS: dict[str, MethodSpec] = {
    spec.key: spec
    for spec in (
        MethodSpec(
            "first_look",
            f"First look: permutation importance, {FIRST_LOOK_REPEATS} repeats on small subsamples",
            _keywords_of(
                PermutationImportance.__init__,
                drop=("n_repeats", "max_samples", "top_k", "confidence", "min_repeats"),
            ),
            True, _first_look,
        ),
        MethodSpec("permutation", "Permutation importance",
                   _keywords_of(PermutationImportance.__init__), True, _permutation),
        MethodSpec("shapley", "Shapley values (SAGE)",
                   _keywords_of(ShapleyImportance.__init__), True, _shapley),
        MethodSpec("gradient", "Integrated gradients",
                   _keywords_of(GradientImportance.__init__), True, _gradient),
        MethodSpec("latent", "Latent code: permutation", _LATENT_KEYWORDS, False, _latent),
        MethodSpec("latent_mi", "Latent code: mutual information", _ONE_SHOT_LATENT, False,
                   _latent_mi),
        MethodSpec("weights", "First-layer weight norm", frozenset({"feature_names"}), False,
                   _weights),
    )
}  # fmt: skip


def check_method(method: Any) -> str:
    """``method`` as a key of METHOD_KEYS, or a ValueError listing them."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHOD_KEYS)}")
    return method


def check_options(options: Any) -> dict[str, dict[str, Any]]:
    """``options`` ({method key: {keyword: value}}) checked by name, before any work.

    Values are checked when the method's engine is built (its constructor validates them).
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            "options must be a dict {method key: {keyword: value}}, e.g. "
            f"options={{'shapley': {{'n_permutations': 20}}}}; got {type(options).__name__}"
        )
    checked: dict[str, dict[str, Any]] = {}
    for key, keywords in options.items():
        spec = METHODS.get(key) if isinstance(key, str) else None
        if spec is None:
            raise ValueError(f"options for unknown method {key!r}; use {', '.join(METHOD_KEYS)}")
        if not isinstance(keywords, Mapping):
            raise TypeError(f"options[{key!r}] must be a dict of keywords, got {keywords!r:.60}")
        unknown = sorted(str(name) for name in keywords if name not in spec.keywords)
        if unknown:
            hint = " (groups are set with Explorer(groups=...))" if "groups" in unknown else ""
            raise TypeError(
                f"options[{key!r}] has keyword(s) {unknown} that {spec.title} does not take; it "
                f"takes {', '.join(sorted(spec.keywords))}{hint}"
            )
        checked[key] = dict(keywords)
    return checked


def engine_keywords(
    key: str, starting: str, given: Mapping[str, Any], options: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """Keywords for method ``key``'s engine: all of ``given`` for the starting method, else the
    common ones it accepts; then its ``options`` (a clash with ``given`` is a TypeError)."""
    spec = METHODS[key]
    if key == starting:
        keywords = dict(given)
    else:
        keywords = {n: v for n, v in given.items() if n in COMMON_KEYWORDS and n in spec.keywords}
    own = options.get(key, {})
    clash = sorted(set(own) & set(keywords) & set(given))
    if clash and key == starting:
        raise TypeError(f"{clash} given both as keywords and in options[{key!r}]; give them once")
    return {**keywords, **own}


def unavailable_note(key: str, model: Any, options: Mapping[str, dict[str, Any]]) -> str:
    """Why ``key`` cannot run on ``model`` ("" when it can), from the structure alone."""
    try:
        if key == "weights":
            first_linear(model)
        elif key in ("latent", "latent_mi"):
            find_encoder(model, options.get(key, {}).get("encoder"))
    except (ValueError, TypeError) as error:
        return str(error)
    return ""
