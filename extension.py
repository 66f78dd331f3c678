"""zipline extension: registers gapline's ``polygon`` and ``polygon-demo`` bundles.

Use ``zipline -e extension.py ...`` from the repo, or run ``gapline init`` once to install this
file as ``$ZIPLINE_ROOT/extension.py`` so plain ``zipline ingest -b polygon`` finds it.
"""
from bundles.register import register_all

register_all()
