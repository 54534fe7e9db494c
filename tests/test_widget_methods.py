"""The multi-method explorer without a browser: selector, scheduler, first look, groups, views."""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import aefi_widget as aefi
from aefi_widget.job import Job
from aefi_widget.widget import Explorer
from aefi_widget.widget import method_payload as method_payload_module
from aefi_widget.widget.methods import (
    FIRST_LOOK_REPEATS,
    METHODS,
    MethodContext,
    first_look_samples,
)
from aefi_widget.widget.payload import decode_summary
from aefi_widget.widget.runs import Run, Scheduler
from tests.widget_fakes import FakeEngine


def _send(widget: Any, content: Any) -> None:
    """Deliver a custom message the way ipywidgets does when it arrives over the comm."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})  # fmt: skip


class Counting(torch.nn.Module):
    """Counts forward calls of the wrapped autoencoder."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


@pytest.fixture
def small() -> tuple[torch.nn.Sequential, np.ndarray]:
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(120, 8)).astype(np.float32)
    X[:, 1] = X[:, 0] + 0.05 * X[:, 1]  # a correlated pair: "auto" groups it
    model = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Tanh(), torch.nn.Linear(3, 8))
    return model, X


def _wait_shown(explorer: Explorer, key: str) -> None:
    run = explorer.run_for(key)
    assert run is not None and run.job.wait(60), f"{key} did not finish"
    assert explorer.publisher.flush(10)


def test_a_method_runs_only_when_asked_and_switching_keeps_results(small) -> None:
    model, X = small
    explorer = Explorer(model, X, first_look=False, n_repeats=3, seed=0)
    try:
        _wait_shown(explorer, "permutation")
        assert explorer.run_for("shapley") is None and explorer.run_for("gradient") is None
        statuses = {m["key"]: m["status"] for m in explorer.dashboard.methods}
        assert statuses["shapley"] == "not started" and statuses["permutation"] == "done"
        permutation = explorer.results["permutation"]
        _send(explorer.dashboard, {"type": "method", "key": "gradient"})
        _wait_shown(explorer, "gradient")
        assert explorer.method == explorer.dashboard.method == "gradient"
        assert explorer.dashboard.labels["title"] == "Integrated gradients"
        assert explorer.run_for("shapley") is None  # never asked for: never built
        _send(explorer.dashboard, {"type": "method", "key": "permutation"})
        assert explorer.publisher.flush()
        assert explorer.dashboard.method == "permutation"
        # The permutation run was not recomputed: the very same snapshot object.
        assert explorer.results["permutation"] is permutation
        assert set(explorer.results) == {"permutation", "gradient"}
        has = {m["key"]: m["has_result"] for m in explorer.dashboard.methods}
        assert has["gradient"] and has["permutation"] and not has["shapley"]
    finally:
        explorer.close()


def test_the_scheduler_pauses_and_continues_with_the_numbers_of_headless_runs(small) -> None:
    model, X = small
    common = dict(seed=3, batch_size=40)
    reference = aefi.permutation_importance(model, X, n_repeats=4, **common)
    shapley_reference = aefi.shapley_importance(model, X, n_permutations=3, **common)
    explorer = Explorer(model, X, first_look=False, autostart=False, n_repeats=4,
                        options={"shapley": {"n_permutations": 3}}, **common)  # fmt: skip
    main = explorer.job
    held, go_on, statuses = threading.Event(), threading.Event(), []

    def hold_at_first_chunk(job: Job) -> None:
        statuses.append(job.status)
        if job.snapshot().evaluations_done > 0 and not held.is_set():
            held.set()
            go_on.wait(30)  # the worker waits here, between two chunks

    main.subscribe(hold_at_first_chunk)
    try:
        explorer.start()
        assert held.wait(30)
        explorer.method = "shapley"  # asks for it: the permutation run is paused
        go_on.set()
        shapley = explorer.run_for("shapley")
        assert shapley is not None and shapley.job.wait(60)
        assert main.wait(60) and main.status == "done"
        assert "paused" in statuses  # it really waited for the Shapley run
        np.testing.assert_array_equal(main.snapshot().importances, reference.importances)
        np.testing.assert_array_equal(
            shapley.job.snapshot().importances, shapley_reference.importances
        )
    finally:
        go_on.set()
        explorer.close()


def test_a_displaced_run_continues_when_the_runs_asked_after_it_end() -> None:
    changes: list[str] = []
    scheduler = Scheduler(lambda run: changes.append(run.key))
    runs = [
        scheduler.add(Run(key, "none", engine, Job(engine)))
        for key, engine in (
            ("a", FakeEngine(n_features=10, n_repeats=4, chunk=1, delay_s=0.01)),
            ("b", FakeEngine(n_features=10, n_repeats=2, chunk=5)),
            ("c", FakeEngine(n_features=10, n_repeats=2, chunk=5)),
        )
    ]
    a, b, c = runs
    scheduler.ask(a, b, c)  # c computes, then b, then a
    for run in runs:
        assert run.job.wait(30) and run.job.status == "done"
    ends = [changes.index(r.key) for r in (c, b, a)]
    assert a.job.snapshot().complete and scheduler.computing() is None
    assert ends == sorted(ends)  # c's first notification came before b's, b's before a's
    scheduler.cancel_all()


def test_pause_by_the_user_is_not_undone_by_the_scheduler() -> None:
    scheduler = Scheduler(lambda run: None)
    slow = FakeEngine(n_features=20, n_repeats=4, chunk=1, delay_s=0.01)
    a = scheduler.add(Run("a", "none", slow, Job(slow)))
    quick = FakeEngine(n_features=4, n_repeats=1, chunk=4)
    b = scheduler.add(Run("b", "none", quick, Job(quick)))
    scheduler.ask(a)
    scheduler.pause(a)
    scheduler.ask(b)
    assert b.job.wait(10)
    threading.Event().wait(0.2)
    assert a.job.status == "paused" and a.user_paused
    scheduler.ask(a)
    assert a.job.wait(30) and a.job.status == "done"


def test_first_look_is_shown_first_then_replaced_once_every_unit_has_an_interval(small) -> None:
    model, X = small
    explorer = Explorer(model, X, n_repeats=3, seed=0, batch_size=30, autostart=False)
    seen: list[tuple[str, float]] = []

    def record(change: dict[str, Any]) -> None:
        # Written in the same update as the summary: the numbers drawn with this method.
        names = explorer.dashboard.feature_names
        summary = decode_summary(explorer.dashboard.summary, len(names))
        seen.append((change["new"], float(summary["n_done"].min())))

    try:
        assert explorer.method == "first_look"
        assert explorer.dashboard.labels["title"].startswith("First look:")
        assert isinstance(explorer.job.engine, aefi.PermutationImportance)
        explorer.dashboard.observe(record, "method")
        explorer.start()
        _wait_shown(explorer, "permutation")
        assert explorer.method == "permutation"
        assert explorer.dashboard.labels["title"] == "Permutation importance"
        # Switched only once every unit has two estimates: bars never lose their interval.
        assert seen and seen[-1][0] == "permutation" and seen[-1][1] >= 2
        first = explorer.results["first_look"]  # the first look stays in the selector
        assert first.method == "permutation" and first.complete
        assert first.n_repeats == FIRST_LOOK_REPEATS
        samples = first_look_samples(X.shape[1], X.shape[0])
        assert first.settings["samples_per_repeat"] == samples
        # The same question as the full run, asked cheaply: a seeded run on row subsamples.
        headless = aefi.permutation_importance(
            model, X, n_repeats=FIRST_LOOK_REPEATS, max_samples=samples, seed=0, batch_size=30
        )
        np.testing.assert_array_equal(first.importances, headless.importances)
        final = explorer.dashboard.runs
        assert len(final) == 1 and final[0]["role"] == "shown+computing"
        assert final[0]["status"] == "done" and final[0]["eta_s"] is None
    finally:
        explorer.close()


class Slow(torch.nn.Module):
    """The wrapped autoencoder, 30 ms per forward call (a run that takes seconds)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.03)
        return self.inner(x)


def test_header_has_a_line_for_the_first_look_and_one_for_the_run_computing(small) -> None:
    model, X = small
    explorer = Explorer(Slow(model), X, n_repeats=3, seed=0, batch_size=30, autostart=False)
    try:
        explorer.start()
        main = explorer.run_for("permutation")
        deadline = time.monotonic() + 60
        while main.job.status != "running":  # the first look is done, the main run started
            assert time.monotonic() < deadline, main.job.status
            time.sleep(0.01)
        explorer.pause()  # the controls act on the main run while the first look stands in
        deadline = time.monotonic() + 30
        while main.job.status != "paused":
            assert time.monotonic() < deadline, main.job.status
            time.sleep(0.01)
        assert explorer.publisher.flush(10)
        assert explorer.method == "first_look"  # one round at most: not switched yet
        shown, computing = explorer.dashboard.runs
        assert shown["role"] == "shown" and shown["title"] == "First look"
        assert shown["status"] == "done" and shown["eta_s"] is None
        assert computing["role"] == "computing" and computing["title"] == "Permutation importance"
        assert "until" in shown["note"] and "replaces the first look" in computing["note"]
        # Paused: no ETA (nothing moves), the rest of the line stays.
        assert computing["status"] == "paused" and computing["eta_s"] is None
        assert computing["n_repeats"] == 3 and computing["n_units"] == X.shape[1]
    finally:
        explorer.close()


def test_a_method_picked_by_hand_is_not_replaced_by_the_first_look_switch(small) -> None:
    model, X = small
    explorer = Explorer(model, X, n_repeats=2, seed=0, autostart=False)
    try:
        explorer.method = "weights"  # picked before anything ran
        explorer.start()
        _wait_shown(explorer, "weights")
        assert explorer.job.wait(60)  # weights computed first, then the others asked for
        _wait_shown(explorer, "permutation")
        assert explorer.method == "weights" and explorer.dashboard.method == "weights"
    finally:
        explorer.close()


def test_groups_from_the_page_give_group_units_with_members(small) -> None:
    model, X = small
    explorer = Explorer(model, X, first_look=False, n_repeats=2, seed=0)
    try:
        _wait_shown(explorer, "permutation")
        explorer.selected_feature = "x0"
        _send(explorer.dashboard, {"type": "groups", "mode": "auto", "threshold": 0.8})
        _wait_shown(explorer, "permutation")
        dashboard = explorer.dashboard
        grouped = [name for name in dashboard.feature_names if name in dashboard.members]
        assert len(grouped) == 1 and sorted(dashboard.members[grouped[0]]) == ["x0", "x1"]
        assert "x0" not in dashboard.feature_names
        assert dashboard.selected_feature == "" == explorer.selected_feature  # x0 is gone
        assert dashboard.groups["mode"] == "auto" and dashboard.groups["n_groups"] == 1
        expected = aefi.permutation_importance(model, X, n_repeats=2, seed=0, groups="auto")
        np.testing.assert_array_equal(explorer.result.importances, expected.importances)
        _send(dashboard, {"type": "groups", "mode": "none"})
        assert explorer.publisher.flush()
        assert "x0" in dashboard.feature_names and dashboard.members == {}
    finally:
        explorer.close()


def test_shapley_with_auto_groups_starts_there(small) -> None:
    model, X = small
    looked_first = Explorer(model, X, method="shapley", groups="auto", autostart=False)
    try:  # with a first look: that comes first, with the same groups
        assert looked_first.method == "first_look"
        assert looked_first.run_for("first_look").groups == "auto:0.8"
        assert looked_first.job is looked_first.run_for("shapley").job
        assert looked_first.run_for("shapley").groups == "auto:0.8"
    finally:
        looked_first.close()
    explorer = Explorer(model, X, method="shapley", groups="auto", first_look=False,
                        n_permutations=2, seed=0, autostart=False)  # fmt: skip
    try:
        assert explorer.method == "shapley" and explorer.run_for("permutation") is None
        explorer.start()
        _wait_shown(explorer, "shapley")
        assert explorer.run_for("shapley").groups == "auto:0.8"
        assert len(explorer.dashboard.members) == 1
        expected = aefi.shapley_importance(model, X, groups="auto", n_permutations=2, seed=0)
        np.testing.assert_array_equal(explorer.result.importances, expected.importances)
    finally:
        explorer.close()


@pytest.mark.parametrize(
    ("keywords", "error", "match"),
    [
        ({"method": "shap"}, ValueError, "first_look, permutation, shapley"),
        ({"options": {"shap": {}}}, ValueError, "unknown method 'shap'"),
        ({"options": {"shapley": {"n_repeats": 3}}}, TypeError, "does not take"),
        ({"options": {"gradient": {"groups": "auto"}}}, TypeError, "Explorer\\(groups="),
        ({"options": ["shapley"]}, TypeError, "options must be a dict"),
        ({"options": {"shapley": 3}}, TypeError, "must be a dict of keywords"),
        ({"groups": "correlated"}, ValueError, "groups must be None, 'auto'"),
        ({"method": "weights", "model": "conv"}, ValueError, "cannot run on this model"),
        ({"n_repeats": 0}, ValueError, "n_repeats"),
    ],
)
def test_bad_methods_and_options_fail_before_any_work(small, keywords, error, match) -> None:
    model, X = small
    keywords = dict(keywords)
    if keywords.pop("model", None) == "conv":
        model = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8)), torch.nn.Conv1d(1, 1, 1),
                                    torch.nn.Flatten())  # fmt: skip
    counting = Counting(model)
    with pytest.raises(error, match=match):
        Explorer(counting, X, **keywords)
    assert counting.calls == 0


def test_unavailable_methods_say_why_and_cannot_be_picked(small) -> None:
    model, X = small
    custom = Counting(model)  # no encoder attribute, not a Sequential: no latent lens
    explorer = Explorer(custom, X, first_look=False, n_repeats=2)
    try:
        _wait_shown(explorer, "permutation")
        methods = {m["key"]: m for m in explorer.dashboard.methods}
        latent = methods["latent"]
        assert latent["status"] == "unavailable" and "encoder=" in latent["note"]
        assert methods["weights"]["status"] == "unavailable"
        warnings = explorer.dashboard.warning_count
        _send(explorer.dashboard, {"type": "method", "key": "latent"})
        assert explorer.publisher.flush() and explorer.dashboard.warning_count == warnings + 1
        assert explorer.method == "permutation"
        with pytest.raises(ValueError, match="cannot run on this model"):
            explorer.method = "weights"
    finally:
        explorer.close()


def test_view_data_is_computed_only_while_its_view_is_shown(small, monkeypatch) -> None:
    real = method_payload_module.view_data
    calls: list[str] = []

    def counted(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return getattr(real, name)(*args, **kwargs)

        return call

    fake = types.SimpleNamespace(
        **{n: counted(n) for n in ("compare_table", "output_map", "latent_map", "latent_top")}
    )
    monkeypatch.setattr(method_payload_module, "view_data", fake)
    model, X = small
    explorer = Explorer(model, X, n_repeats=2, seed=0)
    try:
        _wait_shown(explorer, "permutation")
        assert calls == [] and explorer.dashboard.compare == {}
        _send(explorer.dashboard, {"type": "view", "name": "compare"})
        assert explorer.publisher.flush()
        assert calls == ["compare_table"]
        compare = explorer.dashboard.compare
        assert set(compare["keys"]) == {"first_look", "permutation"}
        points = np.frombuffer(explorer.dashboard.compare_points, dtype="<f4")
        assert points.size == 2 * len(explorer.dashboard.feature_names)
        _send(explorer.dashboard, {"type": "compare_pair", "x": "permutation", "y": "first_look"})
        _send(explorer.dashboard, {"type": "view", "name": "outputs"})
        assert explorer.publisher.flush()
        assert "output_map" in calls and explorer.dashboard.compare == {}
        assert explorer.dashboard.heatmap["kind"] == "outputs"
        _send(explorer.dashboard, {"type": "view", "name": "importance"})
        assert explorer.publisher.flush()
        before = len(calls)
        explorer.top = 5  # another update: nothing of the hidden views is computed
        assert explorer.publisher.flush()
        assert len(calls) == before and explorer.dashboard.heatmap == {}
    finally:
        explorer.close()


def test_the_latent_view_and_its_top_features(small) -> None:
    model, X = small
    explorer = Explorer(model, X, method="latent_mi", first_look=False)
    try:
        _wait_shown(explorer, "latent_mi")
        dashboard = explorer.dashboard
        assert {v["key"]: v["available"] for v in dashboard.views}["latent"]
        _send(dashboard, {"type": "view", "name": "latent"})
        _send(dashboard, {"type": "latent_dim", "index": 1})
        assert explorer.publisher.flush()
        assert dashboard.heatmap["kind"] == "latent" and dashboard.latent_top["dimension"] == 1
        warnings = dashboard.warning_count
        _send(dashboard, {"type": "latent_dim", "index": 3})  # the code has 3 dimensions
        assert explorer.publisher.flush() and dashboard.warning_count == warnings + 1
    finally:
        explorer.close()


def test_progress_counts_the_work_left_of_a_top_k_run(small) -> None:
    model, X = small
    engine = aefi.PermutationImportance(model, X, n_repeats=30, top_k=1, seed=0)
    job = Job(engine).start()
    assert job.wait(60)
    progress, final = job.progress, job.snapshot()
    assert progress.total == final.evaluations_total < engine.evaluations_total
    assert progress.fraction == 1.0


def test_page_controls_act_on_the_shown_run(small) -> None:
    model, X = small
    explorer = Explorer(model, X, first_look=False, n_repeats=2, seed=0, autostart=False)
    try:
        explorer.method = "weights"
        _wait_shown(explorer, "weights")
        _send(explorer.dashboard, {"type": "control", "action": "stop"})  # weights ended
        main = explorer.run_for("permutation")
        assert main is not None and main.job.status == "idle"  # not touched
        explorer.method = "permutation"
        _send(explorer.dashboard, {"type": "control", "action": "stop"})
        assert main.job.wait(30) and main.job.status in ("cancelled", "done")
    finally:
        explorer.close()


def test_pausing_before_the_start_holds_the_run_until_resumed(small) -> None:
    model, X = small
    explorer = Explorer(model, X, n_repeats=2, seed=0, autostart=False)
    try:
        explorer.pause()  # the starting method, while the first look is to come
        explorer.start()
        first = explorer.run_for("first_look")
        assert first is not None and first.job.wait(30)
        threading.Event().wait(0.2)
        assert explorer.job.status == "idle"  # held: the scheduler does not start it
        explorer.resume()
        assert explorer.job.wait(60) and explorer.job.status == "done"
    finally:
        explorer.close()


def test_a_certified_top_k_run_sends_settled_units_and_the_certified_set(small) -> None:
    model, X = small
    explorer = Explorer(model, X, first_look=False, n_repeats=30, top_k=1, seed=0)
    try:
        _wait_shown(explorer, "permutation")
        dashboard, result = explorer.dashboard, explorer.result
        settled = np.frombuffer(dashboard.settled, dtype=np.int8)
        np.testing.assert_array_equal(settled, result.settled.to_numpy())
        assert dashboard.certified == {"k": 1, "names": result.certified_top_k, "done": True}
        assert dashboard.progress["total"] == result.evaluations_total
    finally:
        explorer.close()


@pytest.mark.parametrize(
    ("units", "n", "each"),
    [(1000, 950, 10), (2000, 950, 5), (20000, 950, 4), (5, 27, 7), (40, 300, 75), (1, 10, 3)],
)
def test_first_look_budget_is_about_40000_permuted_rows(units: int, n: int, each: int) -> None:
    # ~1 s at d = 1,000 on 2 cores, split over FIRST_LOOK_REPEATS repeats (an interval for every
    # unit); never fewer than 16 samples in all, never more in all than there are.
    assert first_look_samples(units, n) == each


def test_the_first_looks_snapshots_all_have_an_interval_for_every_unit(small) -> None:
    model, X = small
    names = tuple(f"x{i}" for i in range(X.shape[1]))
    engine = METHODS["first_look"].build(
        MethodContext(model, X, names), {"seed": 0, "batch_size": 30}, None
    )
    snapshots = list(engine.increments())
    assert snapshots, "the first look yielded nothing"
    # Every streamed snapshot: two estimates per unit at least (an interval to draw).
    assert all(snapshot.rounds_done >= 2 for snapshot in snapshots)
    # The final numbers are a plain permutation run's (only the early snapshots are held back).
    plain = aefi.permutation_importance(
        model, X, n_repeats=FIRST_LOOK_REPEATS, max_samples=first_look_samples(8, 120), seed=0,
        batch_size=30, feature_names=list(names),
    )  # fmt: skip
    np.testing.assert_array_equal(snapshots[-1].importances, plain.importances)


def test_an_explorer_holds_x_once_whatever_methods_it_computes(small) -> None:
    model, X = small
    frame = pd.DataFrame(X, index=[f"cell-{i}" for i in range(len(X))])
    common = dict(seed=2, batch_size=50)
    explorer = Explorer(model, frame, n_repeats=2, options={"shapley": {"n_permutations": 2}},
                        **common)  # fmt: skip
    try:
        _wait_shown(explorer, "permutation")
        for key in ("shapley", "gradient", "latent"):
            explorer.method = key
            _wait_shown(explorer, key)
        engines = [
            explorer.run_for(k).engine for k in ("permutation", "shapley", "gradient", "latent")
        ]
        # One private copy of X for all of them (the first look's too), not one per method.
        pointers = {engine.session.X.data_ptr() for engine in engines}
        assert len(pointers) == 1
        # The numbers and the row labels of runs on the user's X.
        results = explorer.results
        reference = aefi.shapley_importance(model, frame, n_permutations=2, **common)
        np.testing.assert_array_equal(results["shapley"].importances, reference.importances)
        gradient = aefi.gradient_importance(model, frame, batch_size=common["batch_size"])
        np.testing.assert_array_equal(results["gradient"].importances, gradient.importances)
        assert list(results["gradient"].per_sample.index) == list(frame.index)
        assert results["shapley"].feature_names == tuple(str(c) for c in frame.columns)
    finally:
        explorer.close()
