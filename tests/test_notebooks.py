"""Execute every notebook in notebooks/ top to bottom, in fast mode (NPAE_FAST=1).

Each notebook checks the lecture's claims it demonstrates in its own assert cells, so a
notebook that runs without error has also passed those checks. The kernel is "python3":
ipykernel provides it (jupyter_client starts the native kernel with this interpreter even
when no kernel spec was installed).
"""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
TIMEOUT = 300  # seconds per cell; fast mode needs a few seconds per notebook


def test_there_is_a_notebook_per_lecture_topic():
    assert len(PATHS) == 11, [p.name for p in PATHS]
    assert [p.name[:2] for p in PATHS] == [f"{i:02d}" for i in range(1, 12)]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, \
                f"{path.name}: clear the outputs before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_in_fast_mode(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert any("assert " in c.source for c in nb.cells if c.cell_type == "code"), \
        f"{path.name} checks none of the lecture's claims"
    monkeypatch.setenv("NPAE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # Fast mode's arrays are small: BLAS and Numba threads gain nothing on them, and on a busy
    # 2-core machine their spinning cost 10-30x (measured: 0.5 s vs 17 s for notebook 3's fits,
    # 0.4 s vs 4.4 s for two conv epochs). One thread unless the caller says otherwise.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    # The kernel must import the npae under test, installed or not.
    root = str(NOTEBOOKS.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
