"""Every setting is documented in the README under its environment variable."""

from __future__ import annotations

from pathlib import Path

from nasdb.schema.settings import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_each_setting_is_documented() -> None:
    text = README.read_text()
    missing = [s.env_var for s in SETTINGS if f"`{s.env_var}`" not in text]
    assert missing == []
