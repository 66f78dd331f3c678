"""The one place gapline changes zipline's behaviour at run time (each patch idempotent, tested).

- :func:`install_fast_commit`: zipline builds an ingestion in a temp dir and then *copies* it
  into ``$ZIPLINE_ROOT`` file by file and deletes the temp dir (``working_dir._commit``); for a
  minute bundle that is thousands of bcolz files written twice. We move them instead (a rename
  on the same filesystem, copy + delete across filesystems) -- same result, same
  all-or-nothing point (only after the ingest function returned), a fraction of the I/O.
  With it, for gapline's bundles (:func:`mark_gapline_ingest`), zipline no longer creates
  the empty ``data/<bundle>/<timestamp>`` folder before the ingest runs (the folder a killed
  ingest used to leave behind, which zipline then loads by default), the working dir lives in
  ``data/.gapline-work-<pid>-*`` (same filesystem, invisible to zipline) and the commit is
  one ``os.rename`` of the finished ingestion into ``data/<bundle>/``: the last step.
- :func:`install_ingest_lock`: one ingest per bundle and ``ZIPLINE_ROOT`` at a time
  (:func:`bundles.ingestions.bundle_lock`); stale temp folders of killed ingests are removed
  before each ingest (:func:`bundles.ingestions.remove_stale_temp`).
- :func:`install_engine_loader_wrapper`: ``zipline run`` hands every algorithm a Pipeline
  loader lookup that knows only pricing columns (the CLI never passes a custom loader). We wrap
  ``TradingAlgorithm.init_engine`` so the lookup can be extended (``factors.loaders.install``
  serves ``PolygonReference`` columns from the ingestion folder). Patching the class, not
  ``run_algo._run`` (imported by value by ``zipline.__main__`` before any extension runs),
  covers ``zipline run``, ``run_algorithm`` and direct ``TradingAlgorithm`` use alike.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import types
from pathlib import Path

_INSTALLED = set()
_PATCH_FLAG = "_gapline_reference_patch"
_lock = threading.Lock()


def _merge_move(src: str, dst: str) -> None:
    """Move ``src`` to ``dst``, merging into directories that already exist at ``dst``."""
    if not os.path.lexists(dst):
        shutil.move(src, dst)
    elif os.path.isdir(src) and os.path.isdir(dst):
        for name in os.listdir(src):
            _merge_move(os.path.join(src, name), os.path.join(dst, name))
    else:
        os.replace(src, dst) if os.path.isfile(src) else shutil.copytree(src, dst, dirs_exist_ok=True)


def _move_commit(self):
    """Drop-in for ``zipline.utils.cache.working_dir._commit``: move instead of copy."""
    os.makedirs(self._final_path, exist_ok=True)
    for name in os.listdir(self.path):
        _merge_move(os.path.join(self.path, name), os.path.join(self._final_path, name))


WORK_PREFIX = ".gapline-work-"  # + "<pid>-": zipline's working dir under data/ (hidden)
_GAPLINE_FLAG = "_gapline_ingest"


def mark_gapline_ingest(fn):
    """Flag a bundle's ingest function as gapline's (atomic commit and lock apply to it)."""
    setattr(fn, _GAPLINE_FLAG, True)
    return fn


def is_gapline_bundle(name: str) -> bool:
    from zipline.data.bundles import bundles

    bundle = bundles.get(name)
    return bundle is not None and getattr(bundle.ingest, _GAPLINE_FLAG, False)


def _working_dir_init(self, final_path, *args, **kwargs):
    """zipline's ``working_dir.__init__`` with the temp dir next to ``final_path`` (zipline's
    ``data/``): the commit is then a rename on one filesystem, and a killed ingest leaves a
    hidden ``.gapline-work-<pid>-*`` folder that the next ingest removes."""
    if os.path.isdir(final_path):
        self.path = tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=final_path)
    else:
        self.path = tempfile.mkdtemp()
    self._final_path = final_path


def _ensure_directory(path):
    """zipline's ``ensure_directory`` as its bundle core sees it: for gapline's bundles the
    ingestion folder ``data/<bundle>/<timestamp>`` is not created up front (only its parent),
    so nothing half-built is ever visible to zipline."""
    from zipline.data.bundles import from_bundle_ingest_dirname
    from zipline.utils import paths

    p = Path(path)
    if is_gapline_bundle(p.parent.name):
        try:
            from_bundle_ingest_dirname(p.name)
        except (ValueError, TypeError):
            pass
        else:
            return paths.ensure_directory(str(p.parent))
    return paths.ensure_directory(path)


def install_fast_commit() -> None:
    if "fast_commit" in _INSTALLED:
        return
    from zipline.data.bundles import core
    from zipline.utils import paths
    from zipline.utils.cache import working_dir

    working_dir._commit = _move_commit
    working_dir.__init__ = _working_dir_init
    proxy = types.ModuleType(paths.__name__)
    proxy.__dict__.update(paths.__dict__)
    proxy.ensure_directory = _ensure_directory
    core.pth = proxy
    _INSTALLED.add("fast_commit")


def install_ingest_lock() -> None:
    """Wrap ``zipline.data.bundles.ingest`` (what ``zipline ingest`` and ``build_bundle`` call):
    for gapline's bundles, hold the bundle's lock and clean stale temp folders first."""
    if "ingest_lock" in _INSTALLED:
        return
    import zipline.data.bundles as zb
    from zipline.data.bundles import core

    original = zb.ingest

    def ingest(name, environ=os.environ, *args, **kwargs):
        if not is_gapline_bundle(name):
            return original(name, environ, *args, **kwargs)
        from .ingestions import bundle_lock, remove_stale_temp

        with bundle_lock(name, environ):
            remove_stale_temp(name, environ)
            return original(name, environ, *args, **kwargs)

    ingest.__wrapped__ = original
    ingest.__doc__ = original.__doc__
    zb.ingest = ingest
    core.ingest = ingest
    _INSTALLED.add("ingest_lock")


def install_engine_loader_wrapper(wrap_get_loader) -> bool:
    """Pass every algorithm's loader lookup through ``wrap_get_loader(get_loader, asset_finder)``.

    Idempotent: returns True when it patched, False when a wrapper is already installed.
    """
    from zipline.algorithm import TradingAlgorithm

    with _lock:
        current = TradingAlgorithm.init_engine
        if getattr(current, _PATCH_FLAG, False):
            return False

        def init_engine(self, get_loader):
            if get_loader is not None:
                get_loader = wrap_get_loader(get_loader, self.asset_finder)
            return current(self, get_loader)

        init_engine.__doc__ = current.__doc__
        init_engine.__wrapped__ = current
        setattr(init_engine, _PATCH_FLAG, True)
        TradingAlgorithm.init_engine = init_engine
        return True


def uninstall_engine_loader_wrapper() -> bool:
    """Undo :func:`install_engine_loader_wrapper`; True when something was removed."""
    from zipline.algorithm import TradingAlgorithm

    with _lock:
        current = TradingAlgorithm.init_engine
        if not getattr(current, _PATCH_FLAG, False):
            return False
        TradingAlgorithm.init_engine = current.__wrapped__
        return True


def engine_loader_wrapper_installed() -> bool:
    from zipline.algorithm import TradingAlgorithm

    return bool(getattr(TradingAlgorithm.init_engine, _PATCH_FLAG, False))
