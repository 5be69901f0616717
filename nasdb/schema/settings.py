"""Every setting nasdb reads, in one declarative table.

Each `Setting` has a name, a default, a kind and a help text. The environment variable is
``NASDB_<NAME>`` (upper case) and the command-line flag, where a command takes one, is
``--<name-with-dashes>``. A test checks that each setting is documented in the README.

Typed access (`number`, `integer`, `home`) raises `InvalidRequest` naming the variable and what it
expects, so a bad value is one line at the command, never a traceback.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from nasdb.schema.errors import InvalidRequest


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str
    kind: str = "text"  # text | number | integer (a positive number / whole number)

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
    Setting("database_url", None, "PostgreSQL URL of the everyday (application) role; unset = "
            "the embedded server in NASDB_HOME"),
    Setting("owner_url", None, "PostgreSQL URL of the schema owner, used by migrations alone "
            "(unset = the embedded server's superuser, or NASDB_DATABASE_URL)"),
    Setting("sql_url", None, "PostgreSQL URL of the SELECT-only login role `nasdb sql` uses "
            "(unset = NASDB_DATABASE_URL with the user nasdb_sql and no password)"),
    Setting("home", _default_home(), "per-user folder for the embedded database and artefacts"),
    Setting("lease_seconds", "60", "how long a worker's claim on a job lasts without a heartbeat",
            "number"),
    Setting("poll_seconds", "2", "how often workers and the UI poll when no notification comes",
            "number"),
    Setting("reconnect_seconds", "120", "how long workers, study drivers and the web app keep "
            "reconnecting to a database that went away before they give up", "number"),
    Setting("max_attempts", "3", "attempts at a training job before it ends with TrainingFailed",
            "integer"),
    Setting("max_params", "200M", "largest architecture (parameters) a proposal may have",
            "number"),
    Setting("max_activation_mb", "8192", "largest activation memory (MiB, one training batch, "
            "forward pass) a proposal may need", "number"),
    Setting("sql_timeout_seconds", "30", "statement timeout of `nasdb sql` and of the web app's "
            "query console", "number"),
    Setting("device", None, "training device: auto, cpu, cuda or cuda:N (unset = cuda when "
            "available)"),
    Setting("slots", "1", "jobs one `nasdb worker` trains at once on its device (one process "
            "each)", "integer"),
    Setting("device_memory", None, "memory one worker process may use on its device, e.g. 8G "
            "(unset = the device's memory less a tenth, shared among its slots)"),
    Setting("precision", "auto", "training precision: auto (bf16 on CUDA, fp32 on CPU), fp32 or "
            "bf16"),
    Setting("compile", "off", "torch.compile for training: off, on, or auto (CUDA jobs with "
            "many steps)"),
    Setting("actor", None, "who is acting, recorded in every event (unset = the OS user)"),
    Setting("port", "5006", "port of the web app", "integer"),
    Setting("raster_above", "3000", "the web app's overview rasterises (datashader) above this "
            "many models", "integer"),
    Setting("ui_auth_file", None, "JSON file of web-app users and passwords ({\"alice\": "
            "\"secret\"}); required when the web app listens beyond loopback"),
    Setting("ui_origins", None, "websocket origins the web app accepts (comma-separated "
            "host:port, as the browser's address bar shows them; unset = the bound address, "
            "localhost and 127.0.0.1 at the port)"),
    Setting("ui_steerers", "*", "web-app users allowed to steer (comma-separated; * = every "
            "signed-in user); the others may only view"),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def get(name: str) -> str | None:
    """The current value of a setting (environment first, then the default)."""
    return _BY_NAME[name].value()


def number(name: str) -> float:
    """A positive, finite number setting (SI suffixes k, M, G allowed); `InvalidRequest` if not."""
    setting = _BY_NAME[name]
    raw = (setting.value() or "").strip()
    try:
        value = float(raw[:-1]) * _SUFFIXES[raw[-1]] if raw[-1:] in _SUFFIXES else float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest(
            f"{setting.env_var}={raw!r} is not a positive number ({setting.help}); "
            f"unset it for the default {setting.default}"
        )
    return value


def integer(name: str) -> int:
    """A positive whole-number setting; `InvalidRequest` if not."""
    setting = _BY_NAME[name]
    value = number(name)
    if value != int(value) or value > 2**31 - 1:
        raise InvalidRequest(
            f"{setting.env_var}={setting.value()!r} is not a whole number up to 2147483647 "
            f"({setting.help}); unset it for the default {setting.default}"
        )
    return int(value)


_MAX_TIMEOUT_MS = 2**31 - 1  # PostgreSQL's statement_timeout: an int of milliseconds


def statement_timeout_ms() -> int:
    """``NASDB_SQL_TIMEOUT_SECONDS`` as PostgreSQL's ``statement_timeout``: whole milliseconds,
    rounded up to at least 1 (0 would turn the timeout off); `InvalidRequest` past PostgreSQL's
    largest value (about 24.8 days), which the server would refuse at connection time."""
    setting = _BY_NAME["sql_timeout_seconds"]
    milliseconds = math.ceil(number(setting.name) * 1000)
    if milliseconds > _MAX_TIMEOUT_MS:
        raise InvalidRequest(
            f"{setting.env_var}={setting.value()!r} is above PostgreSQL's largest statement "
            f"timeout, {_MAX_TIMEOUT_MS // 1000:,} s ({setting.help}); unset it for the default "
            f"{setting.default}"
        )
    return max(1, milliseconds)


def home() -> Path:
    """The per-user nasdb folder, created on first use; `InvalidRequest` when it cannot be."""
    path = Path(str(get("home")))
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {path}")
    except OSError as e:
        raise InvalidRequest(
            f"NASDB_HOME={str(path)!r} cannot be used: {e.strerror or e}; set NASDB_HOME to a "
            "folder you can write"
        ) from e
    return path
