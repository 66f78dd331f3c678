"""gapline's zipline extension: what ``zipline`` must load to know gapline's bundles and the
Pipeline loader of its reference columns.

The repo's ``extension.py`` calls :func:`load`; ``gapline init`` writes a two-line
``$ZIPLINE_ROOT/extension.py`` that does the same, so plain ``zipline ingest -b polygon`` and
``zipline run`` find them on any install (editable or not): nothing is read from the repo.
"""
from __future__ import annotations

from pathlib import Path

from bundles.layout import zipline_root

EXTENSION_SOURCE = '''"""gapline: registers the polygon / polygon-demo bundles and the reference-data Pipeline
loader (written by `gapline init`)."""
from gapline.extension import load

load()
'''


def load() -> None:
    """Register ``polygon`` and ``polygon-demo`` and install the reference-column loader."""
    from bundles.register import register_all
    from factors.loaders import install

    register_all()
    install()


def install_extension(environ=None, force=False) -> Path:
    """Write :data:`EXTENSION_SOURCE` as ``$ZIPLINE_ROOT/extension.py`` (zipline loads it by
    default). An existing different file is kept unless ``force``."""
    dst = zipline_root(environ) / "extension.py"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and not force and dst.read_text() != EXTENSION_SOURCE:
        raise FileExistsError(f"{dst} exists and differs; use --force to replace it")
    dst.write_text(EXTENSION_SOURCE)
    return dst
