"""The ``gapline`` command line: what zipline itself lacks."""
from __future__ import annotations

import logging

import click


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose):
    """gapline: Polygon.io (Massive) data -> zipline bundles -> gap strategies."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--force", is_flag=True, help="Replace an existing, different extension.py.")
def init(force):
    """Install extension.py as $ZIPLINE_ROOT/extension.py (then `zipline` needs no -e)."""
    from .extension import install_extension

    click.echo(f"installed {install_extension(force=force)}")


@main.command()
@click.option("-b", "--bundle", default="polygon", show_default=True)
@click.option("--clean-broken", is_flag=True, help="Delete incomplete ingestion folders.")
def status(bundle, clean_broken):
    """List a bundle's ingestions; flag (and optionally delete) broken ones."""
    from bundles.ingestions import ingestions, remove_broken

    rows = ingestions(bundle)
    if not rows:
        click.echo(f"no ingestions of {bundle!r}; run: zipline -e extension.py ingest -b {bundle}")
    for row in rows:
        state = "ok" if row["ok"] else "BROKEN (missing " + ", ".join(row["missing"]) + ")"
        click.echo(f"{row['name']}  {state}")
    broken = [r for r in rows if not r["ok"]]
    if broken and clean_broken:
        for path in remove_broken(bundle):
            click.echo(f"removed {path}")
    elif broken:
        click.echo(f"{len(broken)} broken ingestion(s): zipline loads the newest folder even when "
                   f"it is broken. Remove them with: gapline status -b {bundle} --clean-broken")


@main.command("download")
@click.option("--start", required=True, help="First session, YYYY-MM-DD.")
@click.option("--end", default=None, help="Last session, YYYY-MM-DD (default: today; "
              "unfinished sessions are skipped).")
@click.option("--tickers", default=None, help="Minute-bar tickers: comma list or @FILE "
              "(default: reference tickers of --types).")
@click.option("--types", default="CS,ETF,ADRC", show_default=True,
              help="Polygon ticker types of the default universe.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Data root holding raw/ (default: $GAPLINE_DATA or $ZIPLINE_ROOT/gapline).")
@click.option("--no-minute", is_flag=True, help="Skip minute aggregates.")
@click.option("--no-daily", is_flag=True, help="Skip daily (grouped) aggregates.")
@click.option("--no-reference", is_flag=True, help="Skip tickers/splits/dividends.")
@click.option("--details", is_flag=True, help="Also fetch ticker details of every ticker.")
@click.option("--refresh-reference", is_flag=True, help="Re-fetch existing reference files.")
@click.option("--api-url", default=None, metavar="URL",
              help="REST API origin (default: $GAPLINE_API_URL, else https://api.massive.com; "
              "https://api.polygon.io works too). The key is sent only there.")
@click.option("--retry-empty", is_flag=True, help="Request again tickers recorded as having "
              "no minute bars in a session.")
def download_command(start, end, tickers, types, root, no_minute, no_daily, no_reference,
                     details, refresh_reference, api_url, retry_empty):
    """Fill the raw cache from the Polygon/Massive REST API ($POLYGON_API_KEY); resumable.

    Minute files are resumed per ticker: tickers a session's files lack are added in a part
    file next to them. Records the ingest would refuse go to raw/rejected/, with reasons."""
    from bundles import download as dl
    from bundles import layout
    from bundles.options import parse_list

    try:
        summary = dl.download(root or layout.data_root(), start, end,
                              tickers=parse_list(tickers), types=parse_list(types),
                              minute=not no_minute, daily=not no_daily,
                              reference=not no_reference, details=details,
                              refresh_reference=refresh_reference, api_url=api_url,
                              retry_empty=retry_empty)
    except (dl.PolygonError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())


# ----------------------------------------------------------------------------- analysis
def _agg_backend():
    import matplotlib

    matplotlib.use("Agg")


_PICKLE_WARNING = ("Loading a pickle runs code stored in it: open only pickles you made "
                   "yourself. For a file from elsewhere use a CSV of the perf frame "
                   "(perf.to_csv('perf.csv')), which is parsed as data only.")


@main.command("tearsheet", help=f"""Tear sheet of one zipline run.

PERF_FILE is the perf pickle `zipline run -o FILE` writes, or a CSV of the perf frame
(`perf.to_csv(FILE)`: the transactions, orders and positions cells are parsed without eval).
It needs the `returns` and `transactions` columns and at least one session.

{_PICKLE_WARNING}
""")
@click.argument("perf_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (PNG, CSV, index.html).")
@click.option("--title", default=None, help="Page title (default: the file name).")
@click.option("--benchmark", default=None, help="Benchmark returns: a CSV/pickle file, or a "
              "symbol read from --bundle.")
@click.option("-b", "--bundle", default=None, help="Bundle for a --benchmark symbol and for "
              "the gap size of each round trip.")
@click.option("--exit-time", "exit_times", multiple=True, metavar="HH:MM",
              help="ET clock of scheduled exit orders (repeatable; default: inferred).")
@click.option("--no-pyfolio", is_flag=True, help="Skip pyfolio's figures (fast).")
def tearsheet_command(perf_file, out_dir, title, benchmark, bundle, exit_times, no_pyfolio):
    _agg_backend()
    from pathlib import Path

    from analysis import tearsheet as ts
    from analysis.gapstats import daily_gaps

    try:
        perf = ts.load_perf(perf_file, columns=ts.TEARSHEET_COLUMNS)
        start, end = ts.daily_returns(perf).index[[0, -1]].tz_localize(None)
        bench = ts.load_benchmark(benchmark, bundle, start, end) if benchmark else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    gaps = daily_gaps(bundle, start, end) if bundle else None
    paths = ts.write_tearsheet(perf, out_dir, title=title or Path(perf_file).stem,
                               benchmark=bench, gaps=gaps, scheduled=list(exit_times) or None,
                               pyfolio=not no_pyfolio)
    click.echo(ts.format_stats(ts.perf_stats(ts.daily_returns(perf), bench)).to_string())
    click.echo(f"wrote {len(paths)} files; open {paths['html']}")


@main.command("compare", help=f"""Statistics table + cumulative-returns chart of several runs.

Each PERF_FILE is a perf pickle (`zipline run -o FILE`) or a CSV of the perf frame; it needs
the `returns` column and at least one session. {_PICKLE_WARNING}
""")
@click.argument("perf_files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--labels", default=None, help="Comma-separated run labels (default: file names).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
def compare_command(perf_files, labels, out_dir):
    _agg_backend()
    from pathlib import Path

    from analysis.compare import unique_labels, write_compare
    from analysis.tearsheet import load_perf

    names = [s.strip() for s in labels.split(",")] if labels else [Path(f).stem for f in perf_files]
    if len(names) != len(perf_files):
        raise click.BadParameter(f"{len(names)} labels for {len(perf_files)} files",
                                 param_hint="--labels")
    try:
        perfs = dict(zip(unique_labels(names), [load_perf(f) for f in perf_files]))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    table, paths = write_compare(perfs, out_dir)
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    click.echo(f"wrote {paths['table']} and {paths['figure']}")


@main.command("gaps")
@click.option("-b", "--bundle", default="polygon", show_default=True)
@click.option("--start", default=None, help="First gap session (default: the bundle's first).")
@click.option("--end", default=None, help="Last gap session (default: the bundle's last).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--min-gap", default=0.02, show_default=True,
              help="|gap| of a gap event (fraction) for the shares table and intraday path.")
@click.option("--types", default=None, help="Polygon types to keep, e.g. CS,ADRC (default: all).")
@click.option("--adjust-dividends", is_flag=True, help="Also remove dividend gaps.")
@click.option("--no-intraday", is_flag=True, help="Skip the minute-bar intraday path.")
def gaps_command(bundle, start, end, out_dir, min_gap, types, adjust_dividends, no_intraday):
    """Gap-fill and continuation statistics by gap class and shares class."""
    _agg_backend()
    from analysis import gapstats

    result = gapstats.study(bundle, start, end, min_gap=min_gap,
                            types=[t.strip() for t in types.split(",")] if types else None,
                            adjust_dividends=adjust_dividends, with_path=not no_intraday)
    paths = gapstats.write_study(result, out_dir,
                                 title=f"gaps: {bundle} {start or ''}..{end or ''}")
    fmt = lambda v: f"{v:.3f}"  # noqa: E731
    click.echo(f"{len(result.events)} ticker-days, by gap class (fill_Nd: filled within N "
               "sessions, day 1 = the gap day):")
    click.echo(result.by_gap.to_string(float_format=fmt))
    click.echo(f"\ngap events (|gap| >= {min_gap:.0%}) by shares class and direction:")
    click.echo(result.by_shares.to_string(float_format=fmt))
    click.echo(f"\nwrote {', '.join(str(p) for p in paths.values())}")


@main.command()
@click.option("--start", default="2024-10-01", show_default=True)
@click.option("--end", default="2024-12-31", show_default=True)
@click.option("-o", "--out", "out_dir", default="reports", show_default=True,
              type=click.Path(file_okay=False))
@click.option("-b", "--bundle", default="polygon-demo", show_default=True)
def demo(start, end, out_dir, bundle):
    """Every algorithm with published vs realistic costs: pickles, tear sheets, summary."""
    from .demo import format_summary, run_demo

    table = run_demo(start, end, out_dir, bundle=bundle)
    click.echo(format_summary(table))
    click.echo(f"reports in {out_dir}/ (tear sheets: {out_dir}/<algorithm>/tearsheet/index.html)")


if __name__ == "__main__":  # pragma: no cover
    main()
