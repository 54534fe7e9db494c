"""Closing a view's widgets: ipywidgets keeps every open widget alive in its registry."""

from __future__ import annotations

import ipywidgets as widgets

__all__ = ["close_widget_tree"]


def close_widget_tree(root: widgets.Widget) -> None:
    """Close ``root`` and every widget its synced traits hold (children, a bqplot figure's
    marks, axes and scales, layouts): ipywidgets keeps each open widget alive in its registry,
    so a dropped view's widgets would otherwise stay in memory with the kernel."""
    stack, seen = [root], set()
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        for name in widget.keys:
            value = getattr(widget, name, None)
            if isinstance(value, dict):  # a mark's scales
                value = list(value.values())
            values = value if isinstance(value, (list, tuple)) else (value,)
            stack.extend(v for v in values if isinstance(v, widgets.Widget))
        widget.close()
