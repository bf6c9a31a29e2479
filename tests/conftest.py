"""Shared test settings.

Hypothesis profiles: "ci" (the default, used by .ci/run) keeps example counts modest so the
whole suite stays well under 10 minutes on 2 cores; "dev" explores more. Choose with
HYPOTHESIS_PROFILE=dev.
"""
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

from npae.data import fresh_machine, load_mnist

# derandomize: CI explores the same examples every run, so a red CI always means a change
# broke something; "dev" draws fresh examples each run to find new counterexamples.
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One BLAS thread for the tests: the matrices here are small, and two OpenBLAS threads
# contending for two busy cores made some tests 10x slower. Results are unchanged.
threadpool_limits(1, user_api="blas")

#: ../shared beside the repository, present on the project's machines and in CI only.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: NPAE_FRESH_MACHINE=1: the tests (and npae itself, see npae.data.fresh_machine) behave as on a
#: machine with only Python on it: ../shared, NPAE_DATA and the Debian package count as absent.
FRESH = fresh_machine()
_FRESH_WHY = "NPAE_FRESH_MACHINE is set: real data counts as absent, as on a new user's machine"


def require_shared(sub=""):
    """Skip (saying why) where the real data sets in ../shared/data are absent. For "mnist",
    a folder NPAE_DATA names (one with MNIST's files) serves as well."""
    path = SHARED_DATA / sub
    if FRESH:
        pytest.skip(f"{path}: {_FRESH_WHY}")
    if sub == "mnist" and mnist_path() is not None:
        return mnist_path()
    if not path.exists():
        pytest.skip(f"real data not present at {path} (only the project's machines and CI "
                    "have ../shared/data); npae itself never needs it")
    return path


def require_lecture():
    """The lecture's text (../shared/seed), or a skip saying why it is absent."""
    path = SHARED / "seed" / "autoencoders-lecture.md"
    if FRESH:
        pytest.skip(f"{path}: {_FRESH_WHY}")
    if not path.exists():
        pytest.skip(f"the lecture is not at {path} (only on the project's machines)")
    return path


def require_fashion_mnist():
    if FRESH:
        pytest.skip(f"{FASHION_MNIST}: {_FRESH_WHY}")
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed: `apt-get install dataset-fashion-mnist` "
                    "puts it in /usr/share/datasets/fashion-mnist (.ci/run does this)")
    return FASHION_MNIST


def mnist_path():
    """A folder holding real MNIST (NPAE_DATA if it names MNIST, else ../shared/data/mnist), or
    None where there is none (always None with NPAE_FRESH_MACHINE=1)."""
    if FRESH:
        return None
    candidates = [os.environ.get("NPAE_DATA"), SHARED_DATA / "mnist"]
    for c in candidates:
        if c and "fashion" not in str(c).lower() and Path(c).exists():
            try:
                load_mnist(c, "test", raw=True)
            except (FileNotFoundError, ValueError):
                continue
            return Path(c)
    return None


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# -- helpers shared by the model tests ----------------------------------------------------------

def sklearn_digits():
    """scikit-learn's 8x8 digits (the optdigits test set: real handwriting, ships with
    scikit-learn, no download) scaled to [0, 1], with their labels."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data / 16.0, d.target


def randomised(model, X, rng, scale=0.5):
    """``model`` built for X (a fit of 0 epochs) with every parameter drawn from N(0, scale^2):
    gradient checks then see generic values, not a special initialisation."""
    model.set_params(n_epochs=0).fit(X)
    for p in model.parameters().values():
        p[...] = scale * rng.standard_normal(p.shape)
    return model


def rel_err(a, b):
    """max |a - b| / max(|a|, |b|): one relative error for a whole array."""
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300)
