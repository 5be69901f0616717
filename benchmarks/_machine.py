"""What every benchmark prints about the machine it ran on: a shared machine's load changes the
figures, so the reader must see it."""

from __future__ import annotations

import os


def machine_load() -> str:
    """``"2 CPUs, load average 5.70 / 4.10 / 3.02 (1 / 5 / 15 min)"``."""
    one, five, fifteen = os.getloadavg()
    return (f"{os.cpu_count()} CPUs, load average {one:.2f} / {five:.2f} / {fifteen:.2f} "
            "(1 / 5 / 15 min)")
