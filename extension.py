"""zipline extension: registers gapline's ``polygon`` and ``polygon-demo`` bundles and the
Pipeline loader for gapline's reference data (``factors.reference.PolygonReference``).

Use ``zipline -e extension.py ...`` from the repo, or run ``gapline init`` once to install this
file as ``$ZIPLINE_ROOT/extension.py`` so plain ``zipline ingest -b polygon`` finds it.
"""
from bundles.register import register_all
from factors.loaders import install as install_pipeline_loaders

register_all()
install_pipeline_loaders()
