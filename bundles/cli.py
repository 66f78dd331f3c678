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
    from .status import install_extension

    click.echo(f"installed {install_extension(force=force)}")


@main.command()
@click.option("-b", "--bundle", default="polygon", show_default=True)
@click.option("--clean-broken", is_flag=True, help="Delete incomplete ingestion folders.")
def status(bundle, clean_broken):
    """List a bundle's ingestions; flag (and optionally delete) broken ones."""
    from .status import ingestions, remove_broken

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
def download_command(start, end, tickers, types, root, no_minute, no_daily, no_reference,
                     details, refresh_reference):
    """Fill the raw cache from the Polygon REST API ($POLYGON_API_KEY); resumable."""
    from . import download as dl
    from . import layout

    try:
        summary = dl.download(root or layout.data_root(), start, end,
                              tickers=dl.parse_list(tickers), types=dl.parse_list(types),
                              minute=not no_minute, daily=not no_daily,
                              reference=not no_reference, details=details,
                              refresh_reference=refresh_reference)
    except (dl.PolygonError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())


# ----------------------------------------------------------------------------- analysis
def _agg_backend():
    import matplotlib

    matplotlib.use("Agg")


@main.command("tearsheet")
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
    """Tear sheet of one zipline run (perf pickle, or a CSV of the perf frame)."""
    _agg_backend()
    from pathlib import Path

    from algorithms.analysis import tearsheet as ts
    from algorithms.analysis.gapstats import daily_gaps

    try:
        perf = ts.load_perf(perf_file)
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


@main.command("compare")
@click.argument("perf_files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--labels", default=None, help="Comma-separated run labels (default: file names).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
def compare_command(perf_files, labels, out_dir):
    """Statistics table + cumulative-returns chart of several runs."""
    _agg_backend()
    from pathlib import Path

    from algorithms.analysis.compare import unique_labels, write_compare
    from algorithms.analysis.tearsheet import load_perf

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
    from algorithms.analysis import gapstats

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
    from algorithms.demo import format_summary, run_demo

    table = run_demo(start, end, out_dir, bundle=bundle)
    click.echo(format_summary(table))
    click.echo(f"reports in {out_dir}/ (tear sheets: {out_dir}/<algorithm>/tearsheet/index.html)")


@main.group()
def baseline():
    """Stored expected results of the standard algorithm runs (tests/expected/)."""


@baseline.command("update")
@click.argument("names", nargs=-1)
def baseline_update(names):
    """Re-run the standard runs on polygon-demo and rewrite their baselines."""
    from algorithms.baseline import update_all

    for path in update_all(list(names) or None):
        click.echo(f"wrote {path}")


@baseline.command("compare")
@click.argument("names", nargs=-1)
def baseline_compare(names):
    """Re-run the standard runs and print where they differ from their baselines."""
    from algorithms.baseline import compare_all

    results = compare_all(list(names) or None).values()
    for result in results:
        click.echo(str(result))
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
