"""zipline extension: registers gapline's ``polygon`` and ``polygon-demo`` bundles and the
Pipeline loader for gapline's reference data (``factors.reference.PolygonReference``).

Use ``zipline -e extension.py ...`` from the repo, or run ``gapline init`` once to install the
same two lines as ``$ZIPLINE_ROOT/extension.py`` so plain ``zipline ingest -b polygon`` finds them.
"""
from gapline.extension import load

load()
