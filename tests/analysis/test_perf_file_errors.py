"""Hostile input to ``gapline tearsheet`` / ``compare`` (issue #12, item 17): files that are no
zipline perf frame get one clean message naming the file and the problem (exit status 1, no
traceback), and the help says that a pickle runs code and that a CSV of the perf frame works.

Hand-built perf frames only: no bundle, no simulation.
"""
from __future__ import annotations

import pickle

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from analysis import perf_files, tearsheet as ts  # noqa: E402
from gapline.cli import main  # noqa: E402


def _perf(sessions=("2024-07-08", "2024-07-09")) -> pd.DataFrame:
    """A minimal perf frame without trades: what the tear sheet reads."""
    idx = pd.DatetimeIndex([pd.Timestamp(f"{s} 20:00", tz="UTC") for s in sessions])
    n = len(idx)
    return pd.DataFrame({"returns": [0.0] * n, "pnl": [0.0] * n,
                         "portfolio_value": [1_000_000.0] * n,
                         "transactions": [[] for _ in range(n)],
                         "orders": [[] for _ in range(n)],
                         "positions": [[] for _ in range(n)]}, index=idx)


def _write_text(path, text):
    path.write_text(text)


def _write_truncated_pickle(path):
    data = pickle.dumps(_perf(), protocol=4)
    path.write_bytes(data[: len(data) // 2])


def _write_pickle(obj):
    def write(path):
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=4)
    return write


#: name -> (file name, writer, phrase the message must contain)
BAD_FILES = {
    "text file": ("notes.txt", lambda p: _write_text(p, "hello world\nthis is no perf frame\n"),
                  "not a zipline perf frame"),
    "truncated pickle": ("run.pickle", _write_truncated_pickle, "truncated"),
    "no rows": ("empty_run.pickle", _write_pickle(_perf(sessions=())), "no rows"),
    "no transactions": ("slim.pickle", _write_pickle(_perf().drop(columns="transactions")),
                        "'transactions'"),
    "binary file": ("chart.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
                    "binary"),
    "empty file": ("zero.pickle", lambda p: p.write_bytes(b""), "empty"),
    "pickle of a list": ("list.pickle", _write_pickle([1, 2, 3]), "not a DataFrame"),
    "CSV without dates": ("bad.csv",
                          lambda p: _write_text(p, "day,returns\nmonday,0.1\ntuesday,0.2\n"),
                          "session dates"),
    "CSV without rows": ("header.csv", lambda p: _perf().iloc[:0].to_csv(p), "no rows"),
}


def _assert_clean_failure(result, path, phrase):
    assert result.exit_code != 0, result.output
    # a ClickException exits through SystemExit; an uncaught error would be the exception
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert str(path) in result.output, result.output
    assert phrase in result.output, result.output


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_tearsheet_refuses_a_bad_file_with_a_clean_message(case, tmp_path):
    name, write, phrase = BAD_FILES[case]
    path = tmp_path / name
    write(path)
    result = CliRunner().invoke(main, ["tearsheet", str(path), "-o", str(tmp_path / "out"),
                                       "--no-pyfolio"])
    _assert_clean_failure(result, path, phrase)
    # ... and says what to give instead, except when the frame is right but empty/cut down
    if case not in ("no rows", "no transactions", "CSV without rows"):
        assert "zipline run -o" in result.output and "to_csv" in result.output


@pytest.mark.parametrize("case", ["truncated pickle", "text file", "no rows", "binary file"])
def test_compare_refuses_a_bad_file_with_a_clean_message(case, tmp_path):
    name, write, phrase = BAD_FILES[case]
    path = tmp_path / name
    write(path)
    good = tmp_path / "good.pickle"
    _perf().to_pickle(good)
    result = CliRunner().invoke(main, ["compare", str(good), str(path),
                                       "-o", str(tmp_path / "out")])
    _assert_clean_failure(result, path, phrase)


def test_load_perf_raises_a_value_error_naming_file_and_problem(tmp_path):
    path = tmp_path / "run.pickle"
    _write_truncated_pickle(path)
    with pytest.raises(ValueError, match=r"run\.pickle.*truncated") as info:
        perf_files.load_perf(path)
    assert isinstance(info.value, perf_files.PerfFileError)
    # compare needs only returns; the tear sheet also needs transactions
    slim = tmp_path / "slim.pickle"
    _perf().drop(columns="transactions").to_pickle(slim)
    assert len(perf_files.load_perf(slim)) == 2
    with pytest.raises(perf_files.PerfFileError, match=r"slim\.pickle.*no 'transactions' column"):
        perf_files.load_perf(slim, columns=perf_files.TEARSHEET_COLUMNS)


def test_write_tearsheet_checks_its_frame(tmp_path):
    with pytest.raises(ValueError, match="no 'transactions' column"):
        ts.write_tearsheet(_perf().drop(columns="transactions"), tmp_path / "a", pyfolio=False)
    with pytest.raises(ValueError, match="no rows"):
        ts.write_tearsheet(_perf(sessions=()), tmp_path / "b", pyfolio=False)


def test_tearsheet_without_positions_notes_instead_of_crashing(tmp_path):
    paths = ts.write_tearsheet(_perf().drop(columns="positions"), tmp_path / "sheet")
    assert "no &#x27;positions&#x27; column" in paths["html"].read_text() or \
        "no 'positions' column" in paths["html"].read_text()


def test_a_csv_of_the_perf_frame_is_the_safe_alternative(tmp_path):
    path = tmp_path / "perf.csv"
    _perf().to_csv(path)
    result = CliRunner().invoke(main, ["tearsheet", str(path), "-o", str(tmp_path / "out"),
                                       "--no-pyfolio"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "index.html").exists()


@pytest.mark.parametrize("command", ["tearsheet", "compare"])
def test_help_warns_that_a_pickle_runs_code_and_offers_the_csv(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "runs code" in text and "only pickles you made yourself" in text
    assert "CSV of the perf frame" in text
