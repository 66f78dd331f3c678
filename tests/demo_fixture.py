"""Session fixture ``demo_bundle`` as a PATH: the ``ZIPLINE_ROOT`` holding ``polygon-demo``.

Use it from a test module with ``from tests.demo_fixture import demo_bundle  # noqa: F401``.
The bundle itself is built once per test session by ``tests/conftest.py``'s ``demo_bundle``
fixture (which this one wraps, so every test shares that single build, into the session's
private ``ZIPLINE_ROOT``); this wrapper returns the root folder
(``<root>/data/polygon-demo/<ingestion>``; raw demo files under :func:`demo_raw_root`).

Set ``GAPLINE_TEST_DEMO_ROOT`` to a ``ZIPLINE_ROOT`` where ``polygon-demo`` is already
ingested (raw files in ``<root>/gapline/demo``) to skip the build (~1-2 minutes) in the
modules that use this fixture.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def demo_raw_root(zipline_root) -> Path:
    """Where the demo raw files are (``bundles.register.demo_root`` with
    ``GAPLINE_DATA=<root>/gapline``, as ``tests/conftest.py`` sets it)."""
    return Path(zipline_root) / "gapline" / "demo"


def _ingested(root: Path) -> bool:
    folder = root / "data" / "polygon-demo"
    return folder.is_dir() and any(p.is_dir() for p in folder.iterdir())


@pytest.fixture(scope="session")
def demo_bundle(request, tmp_path_factory):
    """ZIPLINE_ROOT (Path) holding an ingested ``polygon-demo`` bundle."""
    prebuilt = os.environ.get("GAPLINE_TEST_DEMO_ROOT")
    if prebuilt and _ingested(Path(prebuilt)):
        return Path(prebuilt)
    try:
        # the conftest fixture of the same name: one shared build per session
        request.getfixturevalue("demo_bundle")
        return Path(request.getfixturevalue("_private_zipline_root"))
    except pytest.FixtureLookupError:  # no shared fixture: build here
        from bundles.polygon import build_bundle
        from bundles.register import demo_config

        root = tmp_path_factory.mktemp("demo_zipline")
        environ = dict(os.environ, ZIPLINE_ROOT=str(root), GAPLINE_DATA=str(root / "gapline"))
        build_bundle("polygon-demo", demo_config(environ), root)
        return root
