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

#: ../shared/data beside the repository, present on the project's machines and in CI only.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def require_shared(sub=""):
    """Skip (saying why) where the real data sets in ../shared/data are absent."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not present at {path} (only the project's machines and CI "
                    "have ../shared/data); npae itself never needs it")
    return path


def require_fashion_mnist():
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed: `apt-get install dataset-fashion-mnist` "
                    "puts it in /usr/share/datasets/fashion-mnist (.ci/run does this)")
    return FASHION_MNIST


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
