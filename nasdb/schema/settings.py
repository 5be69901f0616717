"""Every setting nasdb reads, in one declarative table.

Each `Setting` has a name, a default and a help text. The environment variable is
``NASDB_<NAME>`` (upper case) and the command-line flag, where a command takes one, is
``--<name-with-dashes>``. A test checks that each setting is documented in the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str

    @property
    def env_var(self) -> str:
        return "NASDB_" + self.name.upper()

    def value(self) -> str | None:
        """The value from the environment, else the default."""
        return os.environ.get(self.env_var, self.default)


def _default_home() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "nasdb")


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", None, "PostgreSQL URL; unset = the embedded server in NASDB_HOME"),
    Setting("home", _default_home(), "per-user folder for the embedded database and artefacts"),
    Setting("lease_seconds", "60", "how long a worker's claim on a job lasts without a heartbeat"),
    Setting("poll_seconds", "2", "how often workers and the UI poll when no notification comes"),
    Setting("device", None, "training device: auto, cpu, cuda or cuda:N (unset = cuda when "
            "available)"),
    Setting("slots", "1", "jobs one `nasdb worker` trains at once on its device (one process "
            "each)"),
    Setting("device_memory", None, "memory one worker process may use on its device, e.g. 8G "
            "(unset = the device's memory less a tenth, shared among its slots)"),
    Setting("precision", "auto", "training precision: auto (bf16 on CUDA, fp32 on CPU), fp32 or "
            "bf16"),
    Setting("compile", "off", "torch.compile for training: off, on, or auto (CUDA jobs with "
            "many steps)"),
    Setting("actor", None, "who is acting, recorded in every event (unset = the OS user)"),
    Setting("port", "5006", "port of the web app"),
    Setting("raster_above", "3000", "the web app's overview rasterises (datashader) above this "
            "many models"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str | None:
    """The current value of a setting (environment first, then the default)."""
    return _BY_NAME[name].value()


def home() -> Path:
    """The per-user nasdb folder, created on first use."""
    path = Path(str(get("home")))
    path.mkdir(parents=True, exist_ok=True)
    return path
