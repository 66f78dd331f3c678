"""The one place gapline changes zipline's behaviour at run time (each patch idempotent, tested).

- :func:`install_fast_commit`: zipline builds an ingestion in a temp dir and then *copies* it
  into ``$ZIPLINE_ROOT`` file by file and deletes the temp dir (``working_dir._commit``); for a
  minute bundle that is thousands of bcolz files written twice. We move them instead (a rename
  on the same filesystem, copy + delete across filesystems) -- same result, same
  all-or-nothing point (only after the ingest function returned), a fraction of the I/O.
"""
from __future__ import annotations

import os
import shutil

_INSTALLED = set()


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
