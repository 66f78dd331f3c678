"""``ExtendedHours.for_bundle`` (research use): it used to call zipline's removed
``core.most_recent_data`` and raise; it opens the ingestion zipline loads."""
import os

import pandas as pd

from algorithms.extended_hours import ExtendedHours
from bundles.ingestions import ingestion_dir


def test_for_bundle_opens_the_ingestion_zipline_loads(demo_root):
    env = dict(os.environ, ZIPLINE_ROOT=str(demo_root))
    eh = ExtendedHours.for_bundle("polygon-demo", environ=env)
    folder = ingestion_dir("polygon-demo", environ=env)
    assert eh.path.parent.parent == folder
    table = pd.read_parquet(eh.path)
    session = pd.Timestamp(table["session"].iloc[0]).tz_localize(None).normalize()
    sids = list(table.loc[pd.to_datetime(table["session"]).dt.tz_localize(None).dt.normalize()
                          == session, "sid"][:3])
    rows = eh.premarket(session, sids, pd.Timestamp(f"{session.date()} 09:30", tz="America/New_York"))
    expected = table.set_index(["session", "sid"]).sort_index()
    got = rows["last"].to_numpy()
    want = [expected.loc[(s0, sid), "pm_last"] for s0 in [table["session"].iloc[0]] for sid in sids]
    assert list(rows.index) == sids
    pd.testing.assert_series_equal(pd.Series(got), pd.Series(want, dtype=float), check_names=False)
