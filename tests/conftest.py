"""Shared test configuration: quiet logs, a private ZIPLINE_ROOT, and the shared real data."""
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_zipline_root(tmp_path_factory):
    # Tests never touch the user's ~/.zipline.
    root = tmp_path_factory.mktemp("zipline_root")
    old = {k: os.environ.get(k) for k in ("ZIPLINE_ROOT", "GAPLINE_DATA")}
    os.environ["ZIPLINE_ROOT"] = str(root)
    os.environ["GAPLINE_DATA"] = str(root / "gapline")
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def shared_path(*parts):
    """Path under ../shared/data, or skip the test with a clear reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real market data not available at {path} (../shared/data is not checked out)")
    return path


@pytest.fixture(scope="session")
def demo_root(_private_zipline_root):
    """The ZIPLINE_ROOT (Path) holding ``polygon-demo``, generated and ingested once per test
    session into the private root (exactly what ``zipline ingest -b polygon-demo`` does);
    the raw demo files are under ``<root>/gapline/demo``."""
    from bundles.polygon import build_bundle
    from bundles.register import demo_config

    build_bundle("polygon-demo", demo_config(os.environ), _private_zipline_root)
    return Path(_private_zipline_root)


@pytest.fixture(scope="session")
def demo_bundle(demo_root):
    """The loaded ``polygon-demo`` bundle (zipline ``BundleData``)."""
    from zipline.data import bundles as zb

    return zb.load("polygon-demo", environ=dict(os.environ, ZIPLINE_ROOT=str(demo_root)))


@pytest.fixture(scope="session")
def env(demo_root):
    """The environment of a run on the test session's ``polygon-demo`` (its ZIPLINE_ROOT)."""
    return dict(os.environ, ZIPLINE_ROOT=str(demo_root))


@pytest.fixture(scope="session")
def ingestion(demo_root):
    """The newest ``polygon-demo`` ingestion folder of the test session."""
    folder = Path(demo_root) / "data" / "polygon-demo"
    return max(p for p in folder.iterdir() if p.is_dir())
