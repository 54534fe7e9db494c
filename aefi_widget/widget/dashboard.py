"""The anywidget dashboard: synced traits the TypeScript front end draws, and its inbox.

The kernel owns the state. The browser only sends small requests (custom messages), validated
by :mod:`~aefi_widget.widget.messages` on whatever thread delivers them; valid ones are recorded
under :attr:`Dashboard.lock` and the publisher thread applies them, invalid ones become a
``warning``. Direct trait updates from the browser are refused the same way.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from aefi_widget.widget.messages import (
    Control,
    Hello,
    InvalidMessage,
    Request,
    RequestContext,
    Select,
    TopN,
    parse_message,
)

__all__ = ["Dashboard"]

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_TOP_N = 200


def _bundle(name: str) -> Path:
    """Path of a built front-end file; a clear error when the bundle was never built."""
    path = _STATIC / name
    if not path.is_file():
        # anywidget would raise a bare FileNotFoundError at class definition; say what to do.
        raise FileNotFoundError(
            f"The aefi_widget front end is not built ({path} is missing). Install the package "
            "with `pip install -e .` (it runs the npm build), or in a source checkout run "
            "`npm ci && npm run build`."
        )
    return path


def _number_blind(name: str) -> str:
    """``name`` lower-cased with numbers written without leading zeros ("G0061" -> "g61")."""
    return re.sub(r"\d+", lambda digits: str(int(digits.group())), name.lower())


def close_matches(name: str, names: Sequence[str], n: int = 3) -> str:
    """A " Did you mean ...?" hint for an unknown feature name ("" when nothing is close).

    Names equal up to case and zero padding come first ("g061" -> "g0061"): difflib alone ranks
    "g1061" as close as "g0061" and breaks the tie by alphabet.
    """
    key = _number_blind(name)
    same = [candidate for candidate in names if _number_blind(candidate) == key][:n]
    similar = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    matches = list(dict.fromkeys([*same, *similar]))[:n]
    if not matches:
        lowered = name.lower()
        matches = [c for c in names if lowered and lowered in c.lower()][:n]
    return f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""


class Dashboard(anywidget.AnyWidget):
    """Live importance dashboard of any method (header, bars, boxes, search, selection).

    Parameters
    ----------
    feature_names : sequence of str
        The F attributed units, in result order.
    header : dict
        Shown name -> value for the header line (see
        :func:`~aefi_widget.display_labels.header_fields`); the publisher keeps it current.
    labels : dict
        Title, value label with its unit and axis name (see
        :func:`~aefi_widget.display_labels.page_labels`); generic words when omitted.
    top_n : int
        Features drawn in the charts (1 to ``MAX_TOP_N``, clamped to F).
    """

    _esm = _bundle("widget.js")
    _css = _bundle("widget.css")

    feature_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    header = traitlets.Dict().tag(sync=True)
    labels = traitlets.Dict().tag(sync=True)
    n_repeats = traitlets.Int(0).tag(sync=True)
    summary = traitlets.Bytes(b"").tag(sync=True)  # float32 (5, F), see payload.py
    repeat_rows = traitlets.Bytes(b"").tag(sync=True)  # int32 (k,)
    repeats = traitlets.Bytes(b"").tag(sync=True)  # float32 (k, R)
    progress = traitlets.Dict().tag(sync=True)
    # One header line per run on screen (see run_lines.py): the shown one, the computing one.
    runs = traitlets.List(traitlets.Dict()).tag(sync=True)
    # The compare view's "why do they disagree?" for the selected unit (disagreement.py).
    why = traitlets.Dict().tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    warning = traitlets.Unicode("").tag(sync=True)
    warning_count = traitlets.Int(0).tag(sync=True)
    selected_feature = traitlets.Unicode("").tag(sync=True)
    top_n = traitlets.Int(20).tag(sync=True)
    max_top_n = traitlets.Int(MAX_TOP_N).tag(sync=True)
    update_count = traitlets.Int(0).tag(sync=True)
    # Protocol v3, the multi-method explorer (docs/widget-protocol.md); empty for one method.
    methods = traitlets.List(traitlets.Dict()).tag(sync=True)
    method = traitlets.Unicode("").tag(sync=True)
    view = traitlets.Unicode("importance").tag(sync=True)
    views = traitlets.List(traitlets.Dict()).tag(sync=True)
    groups = traitlets.Dict().tag(sync=True)
    members = traitlets.Dict().tag(sync=True)
    settled = traitlets.Bytes(b"").tag(sync=True)  # int8 (F,)
    certified = traitlets.Dict().tag(sync=True)
    compare = traitlets.Dict().tag(sync=True)
    compare_points = traitlets.Bytes(b"").tag(sync=True)  # float32 (2, F)
    heatmap = traitlets.Dict().tag(sync=True)
    heatmap_values = traitlets.Bytes(b"").tag(sync=True)  # float32 (rows, columns)
    latent_top = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        header: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        top_n: int = 20,
    ) -> None:
        names = [str(n) for n in feature_names]
        super().__init__(
            feature_names=names,
            header=dict(header or {}),
            labels=dict(labels or {}),
            top_n=max(1, min(int(top_n), MAX_TOP_N)),
            max_top_n=MAX_TOP_N,
        )
        # One lock per dashboard: every trait write and every request record happens under it.
        self.lock = threading.RLock()
        self._name_to_index = {name: i for i, name in enumerate(names)}
        self._selected = ""  # kernel-side truth; the trait mirrors it
        self._requested_top_n: int | None = None
        self._warning: str = ""  # newest warning not yet published
        self._new_warnings = 0  # warnings since the last update (all counted, one shown)
        self._resync: set[str] = set()  # traits the page changed on its own: send ours again
        self._wake: Callable[[], None] = lambda: None
        self._control: Callable[[str], None] = lambda action: None
        self._request: Callable[[Request], None] | None = None
        self.latent_dims = 0  # latent dimensions the page may ask about (set by the publisher)
        self.on_msg(self._on_front_end_message)

    # ------------------------------------------------------------------ wiring
    def connect(
        self,
        wake: Callable[[], None],
        control: Callable[[str], None],
        request: Callable[[Request], None] | None = None,
    ) -> None:
        """Called by the publisher: how to wake it, and how to pause/resume/stop the job;
        ``request`` (the explorer's) gets the multi-method requests (method, view, groups,
        compare_pair, latent_dim), validated, on the message's thread."""
        with self.lock:
            self._wake, self._control = wake, control
            if request is not None:
                self._request = request

    def set_units(self, names: Sequence[str]) -> None:
        """New attributed units (the shown run changed): rebuild the name index; a selection
        that is not among them is cleared. Call under :attr:`lock` or from the publisher."""
        names = [str(n) for n in names]
        with self.lock:
            self.feature_names = names
            self._name_to_index = {name: i for i, name in enumerate(names)}
            if self._selected not in self._name_to_index:
                self._selected = ""
                self.selected_feature = ""

    def request_context(self) -> RequestContext:
        """What the page may ask for now, from the traits last sent."""
        with self.lock:
            if self._request is None:
                return RequestContext()
            return RequestContext(
                methods=frozenset(
                    m["key"] for m in self.methods if m.get("status") != "unavailable"
                ),
                compare_keys=frozenset(self.compare.get("keys", ())),
                latent_dims=int(self.latent_dims),
                has_custom=bool(self.groups.get("has_custom", False)),
            )

    # ------------------------------------------------------------------ Python side
    @property
    def selected(self) -> str:
        """The selected feature's name ("" for none); the trait follows within 0.1 s."""
        return self._selected

    def select(self, name: str) -> None:
        """Select ``name``; ValueError (with close matches) for an unknown name, nothing changes."""
        if not isinstance(name, str):
            raise TypeError(f"selected_feature must be a feature name (str), got {type(name)}")
        if name not in self._name_to_index:
            hint = close_matches(name, self.feature_names)
            raise ValueError(f"unknown feature {name!r}.{hint}")
        with self.lock:
            self._selected = name
            # Python setters may write under the lock (architecture.md), so the trait is
            # current as soon as this returns.
            self.selected_feature = name
        self._wake()  # the per-repeat values of the new selection

    def request_top_n(self, value: int) -> None:
        """Show ``value`` top features (1 to MAX_TOP_N); applied by the publisher."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"top must be an int, got {type(value).__name__}")
        if not 1 <= value <= MAX_TOP_N:
            raise ValueError(f"top must be in [1, {MAX_TOP_N}], got {value}")
        with self.lock:
            self._requested_top_n = value
        self._wake()

    def take_requests(self) -> tuple[str, int | None, tuple[str, int], set[str]]:
        """For the publisher, clearing the inbox: the selected name, a new top-N or None,
        (newest warning, number of warnings since the last call), traits to re-send."""
        with self.lock:
            top_n, resync = self._requested_top_n, self._resync
            warnings = (self._warning, self._new_warnings)
            self._requested_top_n, self._resync = None, set()
            self._warning, self._new_warnings = "", 0
            return self._selected, top_n, warnings, resync

    # ------------------------------------------------------------------ browser side
    def _on_front_end_message(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        """Validate a browser request and record it; tiny, thread-safe, never writes traits."""
        try:
            request = parse_message(
                content, buffers, self._name_to_index, MAX_TOP_N, self.request_context()
            )
        except InvalidMessage as error:
            self.warn(f"Ignored a message from the page: {error}")
            return
        if isinstance(request, Hello):
            # A live kernel answers; a page showing a saved picture hears nothing and says so.
            self.send({"type": "live"})
            return
        if isinstance(request, Control):
            self._control(request.action)  # Job.pause/resume/cancel only set events
            return
        if not isinstance(request, Select | TopN):
            handler = self._request
            if handler is None:
                self.warn("Ignored a message from the page: this dashboard shows one method")
                return
            handler(request)  # the explorer records it (or asks for a run) and wakes us
            self._wake()
            return
        with self.lock:
            if isinstance(request, Select) and request.index < len(self.feature_names):
                # The units may have changed since the message was checked: index again.
                self._selected = self.feature_names[request.index]
            elif isinstance(request, TopN):
                self._requested_top_n = request.value
        self._wake()

    def warn(self, text: str) -> None:
        """Show ``text`` in the widget's warning banner (recorded now, drawn by the publisher)."""
        logger.warning("%s", text)
        with self.lock:
            # A flood of bad messages must not grow memory: count them all, keep the newest.
            self._warning = text
            self._new_warnings += 1
        self._wake()

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Refuse trait changes sent by the browser: the kernel owns every trait."""
        keys = set(self.keys)
        changed = sorted(k for k, v in sync_data.items() if k in keys and getattr(self, k) != v)
        if changed:
            with self.lock:
                self._resync.update(changed)
            self.warn(f"Ignored a direct change of {changed[:5]} from the page")
