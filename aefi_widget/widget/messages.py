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
    "MAX_MESSAGE_BYTES",
    "MAX_NAME_CHARS",
    "Control",
    "InvalidMessage",
    "Select",
    "TopN",
    "check_index",
    "parse_message",
]

# A legitimate message is well under 200 bytes; a name can be long but not a megabyte.
MAX_MESSAGE_BYTES = 2048
MAX_NAME_CHARS = 1000
CONTROL_ACTIONS = ("pause", "resume", "stop")


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
class TopN:
    """Show this many top features."""

    value: int


Request = Select | Control | TopN


def check_index(value: Any, size: int, what: str) -> int:
    """``value`` as an index in [0, size); a bool or a float is not an index."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"{what} must be an integer, got {type(value).__name__}")
    if not 0 <= value < size:
        raise InvalidMessage(f"{what} {value} is out of range [0, {size})")
    return value


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
    if kind == "top_n":
        _require_keys(content, "value")
        value = content.get("value")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidMessage(f"top_n must be an integer, got {type(value).__name__}")
        if not 1 <= value <= max_top_n:
            raise InvalidMessage(f"top_n {value} is out of range [1, {max_top_n}]")
        return TopN(value)
    shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
    raise InvalidMessage(f"unknown message type {shown!r}")
