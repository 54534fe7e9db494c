"""Messages from the browser are untrusted: bad ones are dropped with a warning, state unchanged."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from aefi_widget.job import Job
from aefi_widget.widget import Dashboard, Explorer, Publisher
from aefi_widget.widget.messages import MAX_MESSAGE_BYTES
from tests.widget_fakes import FakeEngine


def _send(widget: Any, content: Any, buffers: list[bytes] | None = None) -> None:
    """Deliver a custom message the way ipywidgets does when it arrives over the comm."""
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": buffers or []}
    )


@pytest.fixture
def live() -> tuple[Dashboard, Job, Publisher]:
    engine = FakeEngine(n_features=30, n_repeats=3)
    job = Job(engine)
    dashboard = Dashboard(engine.feature_names, top_n=5)
    publisher = Publisher(dashboard, job)
    job.start()
    assert job.wait(10) and publisher.flush()
    return dashboard, job, publisher


def _state(dashboard: Dashboard) -> dict[str, Any]:
    keys = ("selected_feature", "top_n", "summary", "repeat_rows", "repeats", "status")
    return {"selected": dashboard.selected, **{k: getattr(dashboard, k) for k in keys}}


BAD_MESSAGES = {
    "not an object": ["select", 3],
    "no type": {"index": 3},
    "type not a string": {"type": 5},
    "unknown type": {"type": "delete_everything"},
    "index as string": {"type": "select", "index": "3"},
    "index as float": {"type": "select", "index": 3.0},
    "index as bool": {"type": "select", "index": True},
    "negative index": {"type": "select", "index": -1},
    "index too large": {"type": "select", "index": 30},
    "huge index": {"type": "select", "index": 10**30},
    "unknown name": {"type": "select", "name": "feature_300"},
    "name not a string": {"type": "select", "name": ["feature_1"]},
    "index and name": {"type": "select", "index": 1, "name": "feature_1"},
    "extra field": {"type": "select", "index": 1, "script": "alert(1)"},
    "unknown action": {"type": "control", "action": "shutdown"},
    "action not a string": {"type": "control", "action": {"pause": True}},
    "top_n zero": {"type": "top_n", "value": 0},
    "top_n too large": {"type": "top_n", "value": 100_000},
    "top_n as string": {"type": "top_n", "value": "20"},
    "hello with a field": {"type": "hello", "script": "alert(1)"},
    "oversized name": {"type": "select", "name": "x" * 100_000},
    "oversized payload": {"type": "top_n", "value": 3, "padding": list(range(MAX_MESSAGE_BYTES))},
}


@pytest.mark.parametrize("content", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_a_bad_message_is_dropped_with_a_warning(live, content) -> None:
    dashboard, job, publisher = live
    dashboard.select("feature_2")
    assert publisher.flush()
    before, warnings = _state(dashboard), dashboard.warning_count
    _send(dashboard, content)
    assert publisher.flush()
    assert dashboard.warning_count == warnings + 1
    assert dashboard.warning.startswith("Ignored a message from the page")
    assert _state(dashboard) == before
    assert job.status == "done"


def test_binary_buffers_are_refused(live) -> None:
    dashboard, _job, publisher = live
    before = _state(dashboard)
    _send(dashboard, {"type": "select", "index": 1}, buffers=[b"\x00" * 10])
    assert publisher.flush()
    assert "binary" in dashboard.warning
    assert _state(dashboard) == before


def test_a_direct_trait_change_from_the_page_is_refused(live) -> None:
    dashboard, _job, publisher = live
    before = _state(dashboard)
    dashboard._handle_msg(
        {
            "content": {
                "data": {"method": "update", "state": {"selected_feature": "nope", "top_n": -4}}
            },
            "buffers": [],
        }
    )
    assert publisher.flush()
    assert "direct change" in dashboard.warning
    assert _state(dashboard) == before


def test_valid_messages_select_and_resize(live) -> None:
    dashboard, _job, publisher = live
    _send(dashboard, {"type": "select", "index": 4})
    assert dashboard.selected == "feature_4"  # kernel-side state: at once
    assert publisher.flush()
    assert dashboard.selected_feature == "feature_4"
    _send(dashboard, {"type": "select", "name": "feature_9"})
    _send(dashboard, {"type": "top_n", "value": 12})
    assert publisher.flush()
    assert (dashboard.selected_feature, dashboard.top_n) == ("feature_9", 12)
    assert len(dashboard.repeat_rows) == 4 * 13  # top 12 plus the selected feature
    assert dashboard.warning_count == 0


def test_control_messages_drive_the_job() -> None:
    engine = FakeEngine(n_features=40, n_repeats=20, chunk=1, delay_s=0.005)
    job = Job(engine)
    dashboard = Dashboard(engine.feature_names)
    publisher = Publisher(dashboard, job)
    job.start()
    _send(dashboard, {"type": "control", "action": "pause"})
    assert publisher.flush()
    deadline = threading.Event()
    for _ in range(100):
        if job.status == "paused":
            break
        deadline.wait(0.02)
    assert job.status == "paused"
    _send(dashboard, {"type": "control", "action": "resume"})
    _send(dashboard, {"type": "control", "action": "stop"})
    assert job.wait(5)
    assert job.status == "cancelled"
    assert publisher.flush()
    assert dashboard.status == "cancelled"


def test_sample_clicks_are_validated() -> None:
    explorer = Explorer.from_engine(FakeEngine(), autostart=False)
    explorer.selected_feature = "feature_3"
    assert explorer.drilldown.flush(10)
    scatter = explorer.drilldown._errors
    warnings = explorer.dashboard.warning_count
    shown = explorer.drilldown._shown_sample
    for data in ({"index": 99}, {"index": "2"}, {"index": -1}, None, {"x": 1}):
        scatter._handle_custom_msgs(None, {"event": "element_click", "data": data})
    assert explorer.publisher.flush()
    assert explorer.dashboard.warning_count == warnings + 5
    assert explorer.drilldown._shown_sample == shown
    scatter._handle_custom_msgs(None, {"event": "element_click", "data": {"index": 0}})
    assert explorer.drilldown.flush(10)
    drill = explorer.drilldown.drilldown
    lowest = int(explorer.drilldown._points[0])
    assert explorer.drilldown._shown_sample == lowest
    assert list(explorer.drilldown._profile["original"].x) == list(drill.profile_original[lowest])
    explorer.close()


def test_message_storms_from_many_threads_neither_deadlock_nor_corrupt(live) -> None:
    dashboard, job, publisher = live
    messages = [
        {"type": "select", "index": 7},
        {"type": "select", "index": 99},
        {"type": "top_n", "value": 8},
        {"type": "control", "action": "pause"},
        {"type": "control", "action": "resume"},
        {"type": "select", "name": "feature_7"},
    ]

    def storm() -> None:
        for _ in range(200):
            for message in messages:
                _send(dashboard, message)

    threads = [threading.Thread(target=storm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert publisher.flush(10)
    assert (dashboard.selected_feature, dashboard.top_n) == ("feature_7", 8)
    assert dashboard.warning_count == 4 * 200  # every out-of-range index, counted
    assert job.status == "done"


def test_a_hello_from_the_page_is_answered_live_and_changes_nothing(live, monkeypatch) -> None:
    # The page's check for a kernel (a saved picture hears no answer and says so).
    dashboard, _job, publisher = live
    sent: list[Any] = []
    monkeypatch.setattr(dashboard, "send", lambda content, buffers=None: sent.append(content))
    before = _state(dashboard)
    _send(dashboard, {"type": "hello"})
    assert publisher.flush()
    assert sent == [{"type": "live"}]
    assert _state(dashboard) == before and dashboard.warning == ""
