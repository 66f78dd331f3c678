"""The notebooks run top to bottom on the demo bundle (nbclient, the venv's kernel).

Each notebook is executed in memory (the files keep no outputs) with ``ZIPLINE_ROOT``
pointing at the session's ``polygon-demo`` build (``demo_root`` in tests/conftest.py), so a broken
notebook fails the build. Date windows in the parameter cells are kept short.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest


NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["01_universe.ipynb", "02_gap_study.ipynb", "03_sell_gap.ipynb",
             "04_microcap_short.ipynb", "05_factor_study.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs_and_has_parameters(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{name}: strip outputs before committing"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'BUNDLE = "polygon-demo"' in params[0].source


CONCURRENT_KERNELS = 2  # the machine's 2 cores: the test process only waits on the kernels


@pytest.fixture(scope="module")
def executed(demo_root):
    """Every notebook executed, two kernels at a time: ``{name: (notebook, exception)}``."""
    import asyncio

    from nbclient import NotebookClient

    async def run(name, slots):
        nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        async with slots:
            try:
                await client.async_execute()
            except Exception as exc:  # reported by the notebook's own test
                return name, (nb, exc)
        return name, (nb, None)

    async def run_all():
        slots = asyncio.Semaphore(CONCURRENT_KERNELS)
        return dict(await asyncio.gather(*(run(n, slots) for n in NOTEBOOKS)))

    with pytest.MonkeyPatch.context() as mp:  # the kernels inherit the environment
        mp.setenv("ZIPLINE_ROOT", str(demo_root))
        mp.setenv("GAPLINE_DATA", str(demo_root / "gapline"))
        return asyncio.run(run_all())


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, executed):
    nb, exc = executed[name]
    if exc is not None:
        raise exc
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
