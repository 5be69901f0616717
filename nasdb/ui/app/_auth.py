"""Who may use the web app: Panel's basic auth from a password file, viewers and steerers.

Rules (checked before the server starts, so a mistake is one line at the command):
- listening on a loopback address needs nothing; the actor is ``NASDB_ACTOR`` or the OS user;
- listening anywhere else needs ``NASDB_UI_AUTH_FILE``: a JSON object of user names and
  passwords (Panel's basic-auth file; keep it ``chmod 600``). Every session is then signed in, and
  the signed-in user is the actor of every event the session appends;
- ``NASDB_UI_STEERERS`` names the users who may steer (queue, cancel, pin, tag, propose, drive
  studies); ``*`` means every signed-in user. The others are viewers: they see everything and
  append nothing but their own session's UiAction records.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from nasdb.schema import settings
from nasdb.schema.errors import InvalidRequest


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Auth:
    """The server's sign-in rules: the password file and who may steer."""

    users_file: Path
    steerers: frozenset[str] | None  # None: every signed-in user

    def may_steer(self, user: str | None) -> bool:
        return user is not None and (self.steerers is None or user in self.steerers)


def load_auth(host: str) -> Auth | None:
    """The sign-in rules from the settings; None (no sign-in) only on a loopback address.

    Raises `InvalidRequest` when the app would listen beyond loopback without a password file, or
    the file is missing, unreadable or not a JSON object of user names and passwords.
    """
    path = settings.get("ui_auth_file")
    if not path:
        if is_loopback(host):
            return None
        raise InvalidRequest(
            f"serving on {host} exposes the app to the network: set NASDB_UI_AUTH_FILE to a "
            "JSON file of users and passwords ({\"alice\": \"a long secret\"}), or use "
            "--host 127.0.0.1"
        )
    file = Path(path)
    try:
        users = json.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidRequest(f"NASDB_UI_AUTH_FILE {str(file)!r} cannot be read: "
                             f"{e.strerror or e}") from e
    except ValueError as e:
        raise InvalidRequest(f"NASDB_UI_AUTH_FILE {str(file)!r} is not JSON: {e}") from e
    if (not isinstance(users, dict) or not users
            or not all(isinstance(k, str) and k and isinstance(v, str) and v
                       for k, v in users.items())):
        raise InvalidRequest(f"NASDB_UI_AUTH_FILE {str(file)!r} must be a JSON object of user "
                             "names and non-empty passwords, like {\"alice\": \"a long secret\"}")
    raw = (settings.get("ui_steerers") or "*").strip()
    steerers = None if raw == "*" else frozenset(u.strip() for u in raw.split(",") if u.strip())
    return Auth(file, steerers)


def allowed_origins(host: str, port: int) -> list[str]:
    """Websocket origins the server accepts: ``NASDB_UI_ORIGINS`` (comma-separated host[:port]),
    else the address it listens on and the loopback names, at its port."""
    raw = settings.get("ui_origins")
    if raw:
        return [o.strip() for o in raw.split(",") if o.strip()]
    return [f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
