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


if __name__ == "__main__":  # pragma: no cover
    main()
