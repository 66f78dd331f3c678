"""The one place gapline changes zipline's behaviour at run time (each patch idempotent, tested).

- :func:`install_fast_commit`: zipline builds an ingestion in a temp dir and then *copies* it
  into ``$ZIPLINE_ROOT`` file by file and deletes the temp dir (``working_dir._commit``); for a
  minute bundle that is thousands of bcolz files written twice. We move them instead (a rename
  on the same filesystem, copy + delete across filesystems) -- same result, same
  all-or-nothing point (only after the ingest function returned), a fraction of the I/O.
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
import threading

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


def install_fast_commit() -> None:
    if "fast_commit" in _INSTALLED:
        return
    from zipline.utils.cache import working_dir

    working_dir._commit = _move_commit
    _INSTALLED.add("fast_commit")


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
