"""Bundle options (environment, ``zipline -x``), minute-bar subsets, and the small CLI commands."""
from __future__ import annotations

import os
import types

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bundles import layout
from gapline.cli import main
from bundles.polygon import PolygonBundleConfig, build_bundle
from tests.synth import minute_rows, write_minute_days

DAYS = ["2024-07-08", "2024-07-09", "2024-07-10"]


def test_config_from_environment_then_extension_args(tmp_path):
    tickers_file = tmp_path / "t.txt"
    tickers_file.write_text("AAA\nBBB\n\nAAA\n")
    env = {"GAPLINE_DATA": str(tmp_path), "GAPLINE_TICKERS": f"@{tickers_file}",
           "GAPLINE_TYPES": "CS, ADRC", "GAPLINE_START": "2024-07-08",
           "GAPLINE_MINUTE_TICKERS": "types:CS"}
    cfg = PolygonBundleConfig.from_environ(env)
    assert cfg.root == tmp_path and cfg.tickers == ("AAA", "BBB") and cfg.types == ("CS", "ADRC")
    assert cfg.start == pd.Timestamp("2024-07-08") and cfg.minute_tickers == "types:CS"
    # zipline -x polygon.tickers=CCC -x polygon.daily_source=day wins over the environment
    ext = types.SimpleNamespace(polygon=types.SimpleNamespace(tickers="CCC", daily_source="day"))
    cfg = PolygonBundleConfig.from_environ(env, ext)
    assert cfg.tickers == ("CCC",) and cfg.daily_source == "day"


@pytest.mark.parametrize("kwargs, message", [
    ({"daily_source": "hourly"}, "daily_source"),
    ({"bad_rows": "ignore"}, "bad_rows"),
    ({"start": "2024-07-10", "end": "2024-07-01"}, "after end"),
    ({"tickers": "@/no/such/file"}, "does not exist"),
])
def test_bad_options_raise_clearly(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        PolygonBundleConfig(root=tmp_path, **kwargs)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("opts_raw")
    rng = np.random.default_rng(11)
    frame = pd.concat([minute_rows(t, d, 20.0, rng, "09:30", "10:30")
                       for t in ["AAA", "BBB", "ETFX", "NOREF"] for d in DAYS])
    write_minute_days(root, frame)
    layout.write_reference(root, "tickers", [
        {"ticker": "AAA", "type": "CS"}, {"ticker": "BBB", "type": "CS"},
        {"ticker": "ETFX", "type": "ETF"}])
    return root


def _symbols(data):
    return {a.symbol for a in data.asset_finder.retrieve_all(data.asset_finder.sids)}


def test_minute_bars_for_a_subset_daily_bars_for_all(raw, tmp_path):
    data = build_bundle("opt-subset", PolygonBundleConfig(root=raw, minute_tickers="AAA"), tmp_path)
    assert _symbols(data) == {"AAA", "BBB", "ETFX", "NOREF"}
    assets = pd.read_parquet(next(tmp_path.rglob("assets.parquet"))).set_index("ticker")
    assert assets["has_minute_bars"].to_dict() == {"AAA": True, "BBB": False, "ETFX": False,
                                                   "NOREF": False}
    minute = data.equity_minute_bar_reader
    t = pd.Timestamp(f"{DAYS[0]} 09:31", tz="America/New_York").tz_convert("UTC")
    bbb = data.asset_finder.lookup_symbol("BBB", pd.Timestamp(DAYS[0])).sid
    aaa = data.asset_finder.lookup_symbol("AAA", pd.Timestamp(DAYS[0])).sid
    assert minute.get_value(aaa, t, "volume") > 0 and minute.get_value(bbb, t, "volume") == 0
    daily = data.equity_daily_bar_reader
    assert daily.get_value(bbb, pd.Timestamp(DAYS[0]), "volume") > 0  # screens still see BBB


def test_universe_by_type_and_list(raw, tmp_path):
    by_type = build_bundle("opt-types", PolygonBundleConfig(root=raw, types="CS"), tmp_path / "a")
    assert _symbols(by_type) == {"AAA", "BBB"}  # NOREF has no reference type: excluded
    by_list = build_bundle("opt-list", PolygonBundleConfig(root=raw, tickers="ETFX,NOREF"),
                           tmp_path / "b")
    assert _symbols(by_list) == {"ETFX", "NOREF"}
    window = build_bundle("opt-window", PolygonBundleConfig(root=raw, start=DAYS[1]), tmp_path / "c")
    aaa = window.asset_finder.lookup_symbol("AAA", pd.Timestamp(DAYS[2]))
    assert aaa.start_date == pd.Timestamp(DAYS[1])


def test_zipline_clean_keep_last_still_works(raw, tmp_path):
    from zipline.data import bundles as zb

    from bundles.ingestions import ingestions

    env = dict(os.environ, ZIPLINE_ROOT=str(tmp_path))
    for _ in range(2):
        build_bundle("opt-clean", PolygonBundleConfig(root=raw), tmp_path)
    assert len(ingestions("opt-clean", env)) == 2
    zb.clean("opt-clean", keep_last=1, environ=env)
    rows = ingestions("opt-clean", env)
    assert len(rows) == 1 and rows[0]["ok"]
    assert _symbols(zb.load("opt-clean", environ=env)) == {"AAA", "BBB", "ETFX", "NOREF"}


def test_gapline_init_installs_the_extension(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["init"], env={"ZIPLINE_ROOT": str(tmp_path)})
    assert out.exit_code == 0, out.output
    installed = (tmp_path / "extension.py").read_text()
    assert "from gapline.extension import load" in installed and "load()" in installed
    (tmp_path / "extension.py").write_text("# user's own extension\n")
    out = runner.invoke(main, ["init"], env={"ZIPLINE_ROOT": str(tmp_path)})
    assert out.exit_code != 0 and "--force" in str(out.exception)
    assert runner.invoke(main, ["init", "--force"], env={"ZIPLINE_ROOT": str(tmp_path)}).exit_code == 0
