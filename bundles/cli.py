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


if __name__ == "__main__":  # pragma: no cover
    main()
