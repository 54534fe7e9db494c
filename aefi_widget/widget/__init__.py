"""Jupyter front end of aefi_widget (needs the ``widget`` extra: anywidget, ipywidgets, bqplot).

Displays only: numbers come from the engine and the job.
"""

from aefi_widget.widget.dashboard import Dashboard
from aefi_widget.widget.explorer import Explorer
from aefi_widget.widget.publisher import Publisher

__all__ = ["Dashboard", "Explorer", "Publisher"]
