"""written_date (bundles.reference_files): the calendar date a reference value is written on,
strict ISO 8601, never another date."""
from __future__ import annotations

import pandas as pd
import pytest

from bundles.reference_files import written_date


@pytest.mark.parametrize("value, day", [
    ("2024-03-28", "2024-03-28"),
    ("2024-07-08T23:00:00-04:00", "2024-07-08"),  # the zone is dropped, not converted
    ("2024-07-08T01:00:00Z", "2024-07-08"),
    ("2024-07-08T23:59:59", "2024-07-08"),
    (" 2024-03-28", "2024-03-28"),  # first ten characters: " 2024-03-2" = 2024-03-02
    ("20240328", "2024-03-28"),
    (20240328, "2024-03-28"),
    (pd.Timestamp("2024-03-28 15:30"), "2024-03-28"),
])
def test_the_date_written(value, day):
    got = written_date(value)
    assert got == pd.Timestamp(day) and got.tzinfo is None


@pytest.mark.parametrize("value", ["03/28/2024", "2024-13-45", "2024-03-28 x", "abc", None])
def test_anything_else_raises(value):
    with pytest.raises(ValueError):
        written_date(value)


def test_a_downloaded_list_date_that_spells_no_date_is_unknown():
    from bundles.download.details import _list_date

    assert _list_date({"list_date": "1999-11-18"}) == pd.Timestamp("1999-11-18")
    assert _list_date({"list_date": "18/11/1999"}) is None
    assert _list_date({}) is None
