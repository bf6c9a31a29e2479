"""Execute every notebook in notebooks/ top to bottom, in fast mode (NPAE_FAST=1), on every
data source its data cell may choose that is present here.

Each notebook checks the lecture's claims it demonstrates in its own assert cells, so a
notebook that runs without error has also passed those checks. A notebook that picks its data
with ``find_dataset(os.environ.get("NPAE_NOTEBOOK_DATA"))`` runs once per source: the built-in
synthetic digits (always: what a fresh machine has), Fashion-MNIST (where Debian's
``dataset-fashion-mnist`` is installed) and MNIST (where ``NPAE_DATA`` or ../shared/data/mnist
has it); with NPAE_FRESH_MACHINE=1 only the synthetic digits count as present. The kernel is
"python3": ipykernel provides it (jupyter_client starts the native kernel with this interpreter
even when no kernel spec was installed).
"""
import os
from pathlib import Path

import pytest

from conftest import FASHION_MNIST, FRESH, mnist_path

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
TIMEOUT = 300  # seconds per cell; fast mode needs a few seconds per notebook
SOURCES = ("synthetic", "fashion", "mnist")


def reads_notebook_data(path):
    """Whether the notebook chooses its data with NPAE_NOTEBOOK_DATA (else it brings its own)."""
    return "NPAE_NOTEBOOK_DATA" in path.read_text()


def source_setting(source):
    """The NPAE_NOTEBOOK_DATA value for ``source`` and the name find_dataset then reports, or a
    skip saying why the source is absent."""
    if source == "synthetic":
        return "synthetic", "synthetic"
    if FRESH:
        pytest.skip(f"{source}: NPAE_FRESH_MACHINE is set, only the built-in digits count")
    if source == "fashion":
        if not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists():
            pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
        return "fashion-mnist", "fashion-mnist"
    path = mnist_path()
    if path is None:
        pytest.skip("MNIST absent: neither NPAE_DATA nor ../shared/data/mnist holds its files")
    return str(path), "mnist"


CASES = [pytest.param(p, s, id=f"{p.stem}-{s}", marks=pytest.mark.slow)
         for p in PATHS for s in (SOURCES if reads_notebook_data(p) else ("own-data",))]


def test_there_is_a_notebook_per_lecture_topic():
    assert len(PATHS) == 11, [p.name for p in PATHS]
    assert [p.name[:2] for p in PATHS] == [f"{i:02d}" for i in range(1, 12)]
    # the two that bring their own data: 01 draws Gaussians, 02 reads scikit-image's faces
    assert [p.name[:2] for p in PATHS if not reads_notebook_data(p)] == ["01", "02"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, \
                f"{path.name}: clear the outputs before committing"


def printed(nb):
    """Everything the executed notebook printed (stream outputs), one string."""
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.mark.parametrize("path, source", CASES)
def test_notebook_runs_in_fast_mode(path, source, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert any("assert " in c.source for c in nb.cells if c.cell_type == "code"), \
        f"{path.name} checks none of the lecture's claims"
    if source != "own-data":
        setting, name = source_setting(source)
        monkeypatch.setenv("NPAE_NOTEBOOK_DATA", setting)
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
        pytest.fail(f"{path.name} on {source} failed:\n{err}", pytrace=False)
    if source != "own-data":
        # the data cell prints the DatasetChoice: the notebook ran on the source asked for
        assert any(line.startswith(f"{name} ") for line in printed(nb).splitlines()), \
            f"{path.name} did not run on {source}: {printed(nb)[:300]!r}"
