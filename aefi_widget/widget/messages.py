"""Validation of messages from the browser: untrusted input, checked before anything acts on it.

A message is accepted only when it has exactly the expected keys, types and ranges (see
docs/widget-protocol.md); anything else raises :class:`InvalidMessage` with a short reason that
the widget shows as a warning. Checks are O(message size) and never touch widget state, so they
are safe on any thread (JupyterLab 4.4+ may deliver messages on subshell threads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GROUPS_MODES",
    "MAX_MESSAGE_BYTES",
    "MAX_NAME_CHARS",
    "VIEW_NAMES",
    "ComparePair",
    "Control",
    "GroupsChoice",
    "Hello",
    "InvalidMessage",
    "LatentDim",
    "MethodChoice",
    "RequestContext",
    "Select",
    "TopN",
    "ViewChoice",
    "check_index",
    "parse_message",
]

# A legitimate message is well under 200 bytes; a name can be long but not a megabyte.
MAX_MESSAGE_BYTES = 2048
MAX_NAME_CHARS = 1000
CONTROL_ACTIONS = ("pause", "resume", "stop")
VIEW_NAMES = ("importance", "compare", "outputs", "latent")
GROUPS_MODES = ("none", "auto", "custom")


_V3_TYPES = ("method", "view", "groups", "compare_pair", "latent_dim")


class InvalidMessage(ValueError):
    """A message from the front end that is dropped; ``str(error)`` says why."""


@dataclass(frozen=True)
class Select:
    """Select the feature with this index (names are resolved to indices)."""

    index: int


@dataclass(frozen=True)
class Control:
    """Pause, resume or stop the job."""

    action: str


@dataclass(frozen=True)
class Hello:
    """The page asks whether a kernel is connected (a saved picture gets no answer)."""


@dataclass(frozen=True)
class TopN:
    """Show this many top features."""

    value: int


@dataclass(frozen=True)
class MethodChoice:
    """Show (and compute, when not started) this method's run."""

    key: str


@dataclass(frozen=True)
class ViewChoice:
    """Show this view: "importance", "compare", "outputs" or "latent"."""

    name: str


@dataclass(frozen=True)
class GroupsChoice:
    """Attribute groups: "none", "auto" (correlated groups at ``threshold``) or "custom"."""

    mode: str
    threshold: float | None


@dataclass(frozen=True)
class ComparePair:
    """Plot run ``x`` against run ``y`` in the compare view (method keys)."""

    x: str
    y: str


@dataclass(frozen=True)
class LatentDim:
    """List the features driving this latent dimension most."""

    index: int


@dataclass(frozen=True)
class RequestContext:
    """What the page may ask for right now (from the traits the kernel last sent).

    Attributes
    ----------
    methods : frozenset of str
        Method keys offered and not unavailable.
    compare_keys : frozenset of str
        Method keys in the compare table.
    latent_dims : int
        Latent dimensions of the latent result shown (0 when none).
    has_custom : bool
        Whether custom groups were given to the explorer.
    """

    methods: frozenset[str] = frozenset()
    compare_keys: frozenset[str] = frozenset()
    latent_dims: int = 0
    has_custom: bool = False


Request = (
    Select | Control | TopN | MethodChoice | ViewChoice | GroupsChoice | ComparePair | LatentDim
)


def check_index(value: Any, size: int, what: str) -> int:
    """``value`` as an index in [0, size); a bool or a float is not an index."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"{what} must be an integer, got {type(value).__name__}")
    if not 0 <= value < size:
        raise InvalidMessage(f"{what} {value} is out of range [0, {size})")
    return value


def _key(value: Any, allowed: frozenset[str], what: str) -> str:
    """``value`` as one of ``allowed`` (short strings), or InvalidMessage."""
    if not isinstance(value, str):
        raise InvalidMessage(f"{what} must be a string, got {type(value).__name__}")
    if value not in allowed:
        raise InvalidMessage(f"{what} {value[:40]!r} is not one of {sorted(allowed)}")
    return value


def _threshold(value: Any) -> float:
    """A correlation threshold in (0, 1]; a bool, NaN or string is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage(f"threshold must be a number, got {type(value).__name__}")
    if not 0 < value <= 1:  # NaN fails this too
        raise InvalidMessage(f"threshold {value} is out of range (0, 1]")
    return float(value)


def _parse_v3(kind: str, content: Mapping[str, Any], context: RequestContext) -> Request:
    """The multi-method requests (protocol v3): method, view, groups, compare_pair, latent_dim."""
    if kind == "method":
        _require_keys(content, "key")
        return MethodChoice(_key(content.get("key"), context.methods, "method"))
    if kind == "view":
        _require_keys(content, "name")
        return ViewChoice(_key(content.get("name"), frozenset(VIEW_NAMES), "view"))
    if kind == "groups":
        _require_keys(content, "mode", "threshold")
        mode = _key(content.get("mode"), frozenset(GROUPS_MODES), "groups mode")
        threshold = None
        if "threshold" in content:
            if mode != "auto":
                raise InvalidMessage("a threshold goes only with the 'auto' groups mode")
            threshold = _threshold(content["threshold"])
        if mode == "custom" and not context.has_custom:
            raise InvalidMessage("no custom groups were given to this explorer")
        return GroupsChoice(mode, threshold)
    if kind == "compare_pair":
        _require_keys(content, "x", "y")
        x = _key(content.get("x"), context.compare_keys, "compare x")
        return ComparePair(x, _key(content.get("y"), context.compare_keys, "compare y"))
    _require_keys(content, "index")
    return LatentDim(check_index(content.get("index"), context.latent_dims, "latent dimension"))


def _size(content: Any) -> int:
    try:
        return len(json.dumps(content, default=repr))
    except (TypeError, ValueError, RecursionError):
        return MAX_MESSAGE_BYTES + 1  # not serialisable: treat as oversized


def _require_keys(content: Mapping[str, Any], *keys: str) -> None:
    extra = sorted(set(content) - {"type", *keys})
    if extra:
        raise InvalidMessage(f"unexpected field(s) {extra[:5]} in a {content['type']!r} message")


def parse_message(
    content: Any,
    buffers: Sequence[Any] | None,
    name_to_index: Mapping[str, int],
    max_top_n: int,
    context: RequestContext | None = None,
) -> Request:
    """Validate one custom message from the front end and return what it asks for.

    Parameters
    ----------
    content : Any
        The message's JSON content (anything: it comes from the browser).
    buffers : sequence or None
        Binary buffers sent with it; the dashboard's messages never carry any.
    name_to_index : mapping of str -> int
        Feature names (F of them) and their indices.
    max_top_n : int
        Largest accepted top-N.
    context : RequestContext, optional
        Which methods, compare keys, latent dimensions and groups modes the page may ask for;
        without it every multi-method request is refused.

    Raises
    ------
    InvalidMessage
        With the reason, when the message is malformed, oversized or out of range.
    """
    if buffers:
        raise InvalidMessage(f"unexpected binary data ({len(buffers)} buffer(s))")
    if not isinstance(content, Mapping):
        raise InvalidMessage(f"a message must be an object, got {type(content).__name__}")
    size = _size(content)
    if size > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"oversized message ({size} bytes > {MAX_MESSAGE_BYTES})")
    kind = content.get("type")
    if kind == "select":
        if "index" in content and "name" not in content:
            _require_keys(content, "index")
            return Select(check_index(content["index"], len(name_to_index), "feature index"))
        if "name" in content and "index" not in content:
            _require_keys(content, "name")
            name = content["name"]
            if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
                raise InvalidMessage("feature name must be a string of at most 1000 characters")
            if name not in name_to_index:
                raise InvalidMessage(f"unknown feature name {name[:80]!r}")
            return Select(name_to_index[name])
        raise InvalidMessage("a 'select' message needs exactly one of 'index' or 'name'")
    if kind == "control":
        _require_keys(content, "action")
        action = content.get("action")
        if action not in CONTROL_ACTIONS:
            raise InvalidMessage(f"control action must be one of {CONTROL_ACTIONS}")
        return Control(str(action))
    if kind == "hello":
        _require_keys(content)
        return Hello()
    if kind == "top_n":
        _require_keys(content, "value")
        value = content.get("value")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidMessage(f"top_n must be an integer, got {type(value).__name__}")
        if not 1 <= value <= max_top_n:
            raise InvalidMessage(f"top_n {value} is out of range [1, {max_top_n}]")
        return TopN(value)
    if kind in _V3_TYPES:
        return _parse_v3(str(kind), content, context or RequestContext())
    shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
    raise InvalidMessage(f"unknown message type {shown!r}")
