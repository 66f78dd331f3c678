"""One ingest of the hand-written bars (:mod:`tests.bundles.polygon.hand`) for this folder."""
import pytest

from . import hand


@pytest.fixture(scope="session")
def hand_bundle(tmp_path_factory):
    """(BundleData, side-table folder, raw root) of the hand bars, day file + part file."""
    return hand.build(tmp_path_factory, "test-hand")


@pytest.fixture(scope="module")
def bundle(hand_bundle):
    """(bundle data, side-table folder) of the hand-built ingest."""
    data, side, _ = hand_bundle
    return data, side
