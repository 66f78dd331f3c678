"""The entry point: :func:`generate` the demo files once (idempotent, marker written last)."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from .. import layout
from . import files
from .manifest import manifest_base, manifest_events
from .params import DEMO_VERSION, MANIFEST, MARKER, OFFERING_DATE, OFFERING_RATIO
from .reference import dated_details, offering_row, reference
from .simulation import Simulation

log = logging.getLogger(__name__)


def generate(root, force: bool = False, progress: bool = True, sessions=None,
             workers: int | None = None) -> dict:
    """Write the demo raw files under ``root`` and return the manifest (see :mod:`bundles.demo`).

    Idempotent: when ``root/raw/DEMO_VERSION`` holds :data:`DEMO_VERSION` (and ``force`` is
    False) nothing is written and the stored manifest is returned. Otherwise every file is
    (re)written -- the demo folder belongs to the generator -- and the marker is written last,
    so an interrupted run is redone next time.

    ``sessions`` (optional, for spot checks): write the minute and day files of these sessions
    only, plus the reference files; the simulation runs from the start up to the last of them,
    so their bytes are the same as in a full run. The manifest and marker are not written and
    the returned manifest only lists events up to that session.
    ``workers``: processes that format and compress minute files (default: the CPU count, at
    most 4; 1 writes in this process).
    """
    root = Path(root)
    raw = root / "raw"
    marker = raw / MARKER
    manifest_path = raw / MANIFEST
    if sessions is None and not force and marker.exists() and manifest_path.exists() \
            and marker.read_text().strip() == DEMO_VERSION:
        with open(manifest_path) as fh:
            return json.load(fh)

    t0 = time.perf_counter()
    only = None if sessions is None else {pd.Timestamp(s).normalize() for s in sessions}
    sim = Simulation()
    manifest = manifest_base(sim)
    if workers is None:
        workers = files.default_workers()
    log.info("generating polygon-demo data under %s (%d sessions, %d tickers)",
             root, len(sim.sessions), len(set(sim.universe.tickers)))
    n_minute, n_day = files.write_sessions(sim, root, only, workers, progress)
    dated = dated_details(sim)
    files.write_reference(root, reference(sim), dated)
    manifest["dated_details"] = {
        "samples": len(dated), "without_company": sum(r is None for _, _, r in dated),
        "offering": {"ticker": offering_row(sim.universe)["ticker"], "date": OFFERING_DATE,
                     "ratio": OFFERING_RATIO}}
    manifest.update(manifest_events(sim))
    manifest["rows"] = {"minute": int(n_minute), "day": int(n_day)}
    elapsed = time.perf_counter() - t0
    log.info("polygon-demo: %d minute rows, %d day rows, %d sessions in %.1f s",
             n_minute, n_day, len(sim.sessions), elapsed)
    if only is None:
        layout.atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1).encode(),
                                  overwrite=True)
        layout.atomic_write_bytes(marker, (DEMO_VERSION + "\n").encode(), overwrite=True)
    return manifest
