"""The header's progress lines, one per run on screen (tqdm-style): the ``runs`` trait.

The page may show one run while another computes (the explorer's first look stands in for the
run it precedes): each gets its own line, so a title, bars and "done" are never mixed with
another run's "running" and "0 / 10 rounds". An ETA is sent only while its run computes: a
paused run has none (it is not moving) and a finished one needs none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aefi_widget.display_labels import page_labels

__all__ = ["run_line", "run_lines"]


def run_line(job: Any, role: str, title: str = "", note: str = "") -> dict[str, Any]:
    """One line of the ``runs`` trait.

    Parameters
    ----------
    job : Job
        Anything with ``snapshot()``, ``progress`` and ``status``.
    role : {"shown", "computing", "shown+computing"}
        What the run is on the page.
    title : str
        The words for the run ("" takes the result's own title).
    note : str
        What will replace what ("shown until ..."), or "".

    Returns
    -------
    dict
        ``role``, ``title``, ``status``, ``note``; ``done``/``total`` evaluations and
        ``fraction``; ``rounds_done``/``n_repeats`` and ``axis`` (what one round's estimate is);
        ``evaluated``/``n_units`` (units with a value); ``elapsed_s``; ``eta_s`` and
        ``evals_per_s`` (None unless running); ``race_round`` (a rows race's rounds decided,
        its total then an expectation; None for other runs).
    """
    snapshot = job.snapshot()
    progress = job.progress
    status = str(job.status)
    running = status == "running"
    has_value = ~np.all(np.isnan(np.asarray(snapshot.importances)), axis=1)
    evaluated = int(np.count_nonzero(has_value))
    labels = page_labels(snapshot)
    race_round = None
    if snapshot.race_values() is not None and snapshot.resume is not None:
        race_round = int(snapshot.resume.position.get("round", 0))
    return {
        "role": role,
        "title": title or labels["title"],
        "status": status,
        "note": note,
        "done": int(progress.done),
        "total": int(progress.total),
        "fraction": float(progress.fraction),
        "rounds_done": int(progress.rounds_done),
        "n_repeats": int(progress.n_repeats),
        "axis": labels["axis"],
        "evaluated": evaluated,
        "n_units": int(snapshot.n_features),
        "elapsed_s": float(progress.elapsed_s),
        "eta_s": None if not running or progress.eta_s is None else float(progress.eta_s),
        "evals_per_s": None if not running or progress.evals_per_s is None
        else float(progress.evals_per_s),
        "race_round": race_round,
    }  # fmt: skip


def run_lines(
    shown: Any,
    computing: Any,
    *,
    titles: tuple[str, str] = ("", ""),
    notes: tuple[str, str] = ("", ""),
) -> list[dict[str, Any]]:
    """The ``runs`` trait: one line when the shown run is the one whose status the header
    follows, else the shown run's line and the computing run's line (``titles`` and ``notes``
    for each, in that order)."""
    if shown is computing:
        return [run_line(shown, "shown+computing", titles[0], notes[0])]
    return [
        run_line(shown, "shown", titles[0], notes[0]),
        run_line(computing, "computing", titles[1], notes[1]),
    ]
