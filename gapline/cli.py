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
    """List a bundle's ingestions; flag (and optionally delete) broken ones and the temp
    folders killed ingests left behind."""
    from bundles.ingestions import (IngestLocked, bundle_lock, ingestions, remove_broken,
                                    remove_stale_temp, stale_temp)

    rows = ingestions(bundle)
    stale = stale_temp(bundle)
    if stale and clean_broken:
        try:
            with bundle_lock(bundle):  # never under a running ingest
                for path in remove_stale_temp(bundle):
                    click.echo(f"removed {path}")
        except IngestLocked as exc:
            click.echo(f"temp folders kept: {exc}")
    elif stale:
        click.echo(f"{len(stale)} temp folder(s) of killed ingests, e.g. {stale[0]}: remove "
                   f"them with: gapline status -b {bundle} --clean-broken")
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


_REST_ONLY = ("tickers", "types", "no_reference", "details", "refresh_reference", "api_url",
              "retry_empty", "details_every")
_FLAT_FILES_ONLY = ("profile", "s3_endpoint", "jobs", "dry_run")


def _given(ctx, names) -> list[str]:
    """The options among ``names`` set on the command line (not left at their default)."""
    from click.core import ParameterSource

    return ["--" + n.replace("_", "-") for n in names
            if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]


@main.command("download")
@click.option("--start", required=True, help="First session, YYYY-MM-DD.")
@click.option("--end", default=None, help="Last session, YYYY-MM-DD (default: today; "
              "unfinished sessions are skipped).")
@click.option("--tickers", default=None, help="Minute-bar tickers: comma list or @FILE "
              "(default: reference tickers of --types). Only the minute bars are limited: the "
              "day aggs (grouped daily, one request per session) always cover the whole "
              "market unless --no-daily, so the ingest's daily bars and screens do too.")
@click.option("--types", default="CS,ETF,ADRC", show_default=True,
              help="Polygon ticker types of the default universe.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Data root holding raw/ (default: $GAPLINE_DATA or $ZIPLINE_ROOT/gapline).")
@click.option("--no-minute", is_flag=True, help="Skip minute aggregates.")
@click.option("--no-daily", is_flag=True, help="Skip daily (grouped) aggregates of the whole "
              "market (then a --tickers subset's ingest has daily bars for that subset only).")
@click.option("--no-reference", is_flag=True, help="Skip tickers/splits/dividends.")
@click.option("--details", is_flag=True, help="Also fetch today's (undated) ticker details of "
              "every ticker; they count only from today on.")
@click.option("--details-every", default="1M", show_default=True, metavar="1M|3M|2W|none",
              help="Dated ticker details (point-in-time shares outstanding, type, exchange): "
              "each ticker at its listing (or 90 days before --start), every month-end and "
              "every split; 'none' skips them.")
@click.option("--refresh-reference", is_flag=True, help="Re-fetch existing reference files.")
@click.option("--api-url", default=None, metavar="URL",
              help="REST API origin (default: $GAPLINE_API_URL, else https://api.massive.com; "
              "https://api.polygon.io works too). The key is sent only there.")
@click.option("--retry-empty", is_flag=True, help="Request again tickers recorded as having "
              "no minute bars in a session.")
@click.option("--flat-files", is_flag=True, help="Sync the vendor's S3 flat files (minute and "
              "day aggs of every ticker) instead of calling the REST API; needs the S3 keys of "
              "the Massive dashboard (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile).")
@click.option("--profile", default=None, metavar="NAME",
              help="--flat-files: AWS profile holding the S3 keys (default: boto3's chain).")
@click.option("--s3-endpoint", default=None, metavar="URL",
              help="--flat-files: S3 endpoint (default: $GAPLINE_S3_ENDPOINT, else "
              "https://files.massive.com).")
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(min=1),
              help="--flat-files: files transferred at once.")
@click.option("--dry-run", is_flag=True, help="--flat-files: list what would be fetched (new / "
              "replaced / unchanged, with sizes); write nothing.")
@click.pass_context
def download_command(ctx, start, end, tickers, types, root, no_minute, no_daily, no_reference,
                     details, details_every, refresh_reference, api_url, retry_empty,
                     flat_files, profile, s3_endpoint, jobs, dry_run):
    """Fill the raw cache from the Polygon/Massive REST API ($POLYGON_API_KEY); resumable.

    Minute files are resumed per ticker: tickers a session's files lack are added in a part
    file next to them. Records the ingest would refuse go to raw/rejected/, with reasons.

    With --flat-files, sync the vendor's flat files from S3 instead: only files missing or
    changed on the server are fetched; a replaced file's old copy is kept under a dated name
    and recorded in raw/manifests/flatfiles.json. Reference data still comes from the REST
    API (run once more without --flat-files, with --no-minute --no-daily)."""
    from bundles import download as dl
    from bundles import layout
    from bundles.options import parse_list

    wrong = _given(ctx, _REST_ONLY if flat_files else _FLAT_FILES_ONLY)
    if wrong:
        raise click.UsageError(
            f"{', '.join(wrong)}: only for the REST download, not with --flat-files (flat files "
            f"hold every ticker)" if flat_files else f"{', '.join(wrong)}: only with --flat-files")
    if flat_files:
        datasets = [d for d, skip in ((layout.MINUTE_DATASET, no_minute),
                                      (layout.DAY_DATASET, no_daily)) if not skip]
        try:
            summary = dl.sync_flat_files(root or layout.data_root(), start, end,
                                         datasets=datasets, endpoint=s3_endpoint,
                                         profile=profile, jobs=jobs, dry_run=dry_run)
        except (dl.PolygonError, OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(summary.describe())
        if summary.failed:
            raise click.ClickException(f"{len(summary.failed)} flat file(s) failed; run again "
                                       f"to fetch them")
        return
    try:
        summary = dl.download(root or layout.data_root(), start, end,
                              tickers=parse_list(tickers), types=parse_list(types),
                              minute=not no_minute, daily=not no_daily,
                              reference=not no_reference, details=details,
                              refresh_reference=refresh_reference, api_url=api_url,
                              retry_empty=retry_empty, details_every=details_every)
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
    from analysis.perf_files import TEARSHEET_COLUMNS, load_perf

    try:
        perf = load_perf(perf_file, columns=TEARSHEET_COLUMNS)
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
    from analysis.perf_files import load_perf

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
    """Gap-fill and continuation statistics by gap class and shares-outstanding class.

    The shares class uses the shares outstanding known before each gap session (dated
    reference data; not the float: Polygon/Massive has no dated float)."""
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
    click.echo(f"\ngap events (|gap| >= {min_gap:.0%}) by shares-outstanding class (known "
               "before the session; not the float) and direction:")
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


# ----------------------------------------------------------------------------- factors
@main.command("factor")
@click.argument("name")
@click.option("-b", "--bundle", default="polygon-demo", show_default=True)
@click.option("--start", required=True, help="First factor session.")
@click.option("--end", required=True, help="Last factor session.")
@click.option("--periods", default="1,5,10", show_default=True,
              help="Forward-return horizons in sessions (from the open).")
@click.option("--quantiles", default=5, show_default=True, type=int)
@click.option("--max-loss", default=0.35, show_default=True, type=float,
              help="alphalens: the largest share of factor values it may drop.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
def factor_command(name, bundle, start, end, periods, quantiles, max_loss, out_dir):
    """alphalens tear sheets (PNG + index.html) of factor NAME: gap, gap_zscore, price_std,
    relative_volume, avg_range, dollar_volume, or SCREEN.COLUMN of a strategy's Pipeline
    (e.g. sell_gap.std)."""
    _agg_backend()
    from factors.analysis import factor_data, factor_summary, write_tear_sheets

    try:
        horizons = tuple(int(p) for p in periods.split(",") if p.strip())
        data = factor_data(name, start, end, bundle=bundle, periods=horizons,
                           quantiles=quantiles, max_loss=max_loss)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    paths = write_tear_sheets(data, out_dir, title=f"{name} on {bundle} {start}..{end}")
    for label, table in factor_summary(data).items():
        click.echo(f"{label}:\n{table.to_string(float_format=lambda v: f'{v:.4f}')}\n")
    click.echo(f"wrote {len(paths)} files; open {paths['html']}")


# ----------------------------------------------------------------------------- sweeps
@main.command("sweep", help="""Backtest ALGORITHM over a parameter grid, cost presets and
walk-forward windows on a Dask cluster.

ALGORITHM is a module name (sell_gap) or a file (algorithms/sell_gap.py). One task per
(parameters, preset, window), each the same run as algorithms.runner.run. Results go to
OUT/results.parquet (one row per task), heat maps, OUT/index.html, and per task under
OUT/tasks/. Rerunning the same command skips finished tasks (--force reruns them); Ctrl-C
keeps what finished.

\b
  gapline sweep algorithms/sell_gap.py -b polygon-demo --start 2024-10-01 --end 2024-12-31 \\
      --grid top_n=5,10 --grid entry_minute=5,10 --costs published,realistic \\
      --walk-forward 20D:10D --select sharpe --workers 2 -o sweeps/sg
""")
@click.argument("algorithm")
@click.option("-b", "--bundle", default="polygon-demo", show_default=True)
@click.option("--start", required=True, help="First session (moved to the algorithm's "
              "earliest start when its look-back needs it).")
@click.option("--end", required=True, help="Last session.")
@click.option("--grid", "grid_specs", multiple=True, metavar="NAME=V1,V2",
              help="A parameter and its values (repeatable; the grid is their product).")
@click.option("--costs", default="published", show_default=True,
              help="Comma-separated cost presets (zero, published, realistic).")
@click.option("--walk-forward", default=None, metavar="IN:OUT",
              help="Choose on IN, trade the next OUT, e.g. 2M:1M, 8W:4W, 40D:20D.")
@click.option("--select", default="sharpe", show_default=True,
              type=click.Choice(["sharpe", "sortino", "annual_return", "calmar",
                                 "max_drawdown"]),
              help="Walk-forward selection statistic.")
@click.option("--workers", type=int, default=None,
              help="Local worker processes (default: one per core).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A running Dask scheduler, e.g. tcp://host:8786 (instead of --workers).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Rerun tasks that already finished.")
@click.option("--retry-errors", is_flag=True, help="Rerun tasks that finished with an error.")
@click.option("--keep-perf", is_flag=True, help="Also keep each task's perf frame "
              "(OUT/perf/<key>.pickle).")
@click.option("--heatmap", default=None, metavar="X,Y", help="The two parameters of the heat "
              "maps (default: the first two of the grid).")
@click.option("--capital-base", default=1_000_000.0, show_default=True, type=float)
@click.option("-e", "--extension", "extensions", multiple=True, type=click.Path(exists=True),
              help="zipline extension file to load on every worker (repeatable; gapline's "
              "own is always loaded).")
@click.option("--dashboard-address", default=":8787", show_default=True,
              help="Where the local cluster serves the Dask dashboard.")
def sweep_command(algorithm, bundle, start, end, grid_specs, costs, walk_forward, select,
                  workers, scheduler, out_dir, force, retry_errors, keep_perf, heatmap,
                  capital_base, extensions, dashboard_address):
    _agg_backend()
    import sys

    from . import sweep as sw

    if workers is not None and scheduler:
        raise click.BadParameter("give --workers or --scheduler, not both", param_hint="--workers")
    try:
        spec = sw.SweepSpec(algorithm, start, end, bundle=bundle,
                            grid=sw.parse_grid(grid_specs), costs=tuple(sw.parse_list(costs)),
                            walk_forward=walk_forward, select=select,
                            capital_base=capital_base, keep_perf=keep_perf,
                            heatmap=tuple(sw.parse_list(heatmap)) or None)
        if spec.heatmap and not set(spec.heatmap) <= set(spec.grid):
            raise sw.GridError(f"--heatmap {heatmap}: name parameters of the --grid")
        client, cluster = sw.start_client(workers, scheduler, dashboard_address, extensions)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    bar = {}

    def on_start(todo, skipped):
        click.echo(f"{todo + skipped} tasks: {todo} to run, {skipped} finished before "
                   f"(--force reruns them)")
        bar["bar"] = click.progressbar(length=todo, label="sweep", file=sys.stderr,
                                       show_pos=True, show_eta=True)
        bar["bar"].__enter__()

    def on_result(row):
        bar["bar"].update(1)

    try:
        link = sw.dashboard_link(client)
        click.echo(f"Dask dashboard: {link}" if link else
                   "Dask dashboard: not available (install bokeh)")
        outcome = sw.run_sweep(spec, out_dir, client, force=force, retry_errors=retry_errors,
                               on_start=on_start, on_result=on_result)
    except sw.SweepInterrupted as exc:
        o = exc.outcome
        raise click.ClickException(
            f"interrupted: {len(o.results)} finished tasks kept in {out_dir} "
            f"(results.parquet); rerun the same command to resume") from None
    except (ValueError, TypeError, sw.ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if "bar" in bar:
            bar["bar"].__exit__(None, None, None)
        client.close()
        if cluster is not None:
            cluster.close()
    click.echo(format_sweep(outcome))


def format_sweep(outcome) -> str:
    """The end of ``gapline sweep``: ingestion, counts, best configurations, DSR/PBO."""
    lines = [f"ingestion {outcome.ingestion['ingestion']} seen by "
             f"{outcome.ingestion['workers']} workers; {outcome.ran} tasks run, "
             f"{outcome.skipped} skipped, {outcome.errors} failed, {outcome.seconds:.1f} s",
             f"sessions {outcome.plan['sessions'][0]}..{outcome.plan['sessions'][-1]} (the "
             f"earliest start the Pipeline look-back allows: {outcome.plan['earliest']})"]
    configs = outcome.report.get("configs")
    for preset, info in outcome.report.get("summary", {}).get("presets", {}).items():
        lines.append(f"\n{preset} costs:")
        if configs is not None and len(configs):
            part = configs[configs["costs"] == preset].sort_values("sharpe", ascending=False)
            cols = ["config", "annual_return", "sharpe", "max_drawdown", "fills", "failed"]
            lines.append(part[cols].head(5).to_string(index=False, float_format="%.4f"))
        dsr = info["overfitting"]["deflated_sharpe"]
        pbo = info["overfitting"]["pbo"]
        lines.append(f"deflated Sharpe ratio of the best: {dsr['dsr']:.3f}" if "dsr" in dsr
                     else f"deflated Sharpe ratio: {dsr.get('note')}")
        lines.append(f"probability of backtest overfitting (CSCV): {pbo['pbo']:.3f}"
                     if "pbo" in pbo else f"PBO: {pbo.get('note')}")
        wf = info.get("walk_forward")
        if wf:
            lines.append("walk-forward: " + ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in wf.items()))
    lines.append(f"\nwrote {outcome.out_dir}/results.parquet and "
                 f"{outcome.report.get('paths', {}).get('html', outcome.out_dir)}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    main()
