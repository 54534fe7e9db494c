"""Peak memory of one call, measured in a child process (Linux: /proc/self/status).

A child's script defines what to measure and calls ``measure(call)`` from :data:`HELPERS`; the
peak restarts at the call (``clear_refs``), so imports and warm-up do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HELPERS = textwrap.dedent(
    """
    import json

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    def measure(call):
        '''(extra peak bytes above the resident memory before, call's result).'''
        open("/proc/self/clear_refs", "w").write("5")  # the peak restarts from here
        before = status("VmRSS")
        result = call()
        return status("VmHWM") - before, result
    """
)


def run_child(code: str, *args: str, timeout: float = 600) -> dict:
    """Run ``HELPERS + code`` in a fresh interpreter; the JSON object its last line prints."""
    out = subprocess.run(
        [sys.executable, "-c", HELPERS + textwrap.dedent(code), *args],
        check=True, capture_output=True, text=True, timeout=timeout,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])
