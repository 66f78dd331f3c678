"""Where the demo raw files of a test session live (the fixtures are in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path


def demo_raw_root(zipline_root) -> Path:
    """The demo raw files (``bundles.register.demo_root`` with ``GAPLINE_DATA=<root>/gapline``,
    as ``tests/conftest.py`` sets it)."""
    return Path(zipline_root) / "gapline" / "demo"
