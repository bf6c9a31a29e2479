"""npae's estimators under scikit-learn's own conformance suite (scikit-learn: test extra only).

Every estimator that takes (n_samples, n_features) runs ``parametrize_with_checks``: the
constructor/get_params/set_params/clone contract, ``n_features_in_``, clear errors for NaN,
inf, complex, object, sparse, empty and 1-D input, fit idempotence, no mutation of the input,
pickling, transformer consistency and dtype preservation. The instances use tiny
hyper-parameters so the whole suite runs in seconds.

The gradient-trained autoencoders run with ``decoder="linear", loss="squared"``: the
cross-entropy pair needs inputs in [0, 1] (the lecture's binary inputs) and refuses the
checks' Gaussian data, by design, with a message saying so (tested in their own files).
Each gradient-trained model also runs with its defaults (apart from that pair).
``ConvAutoencoder`` takes images (n, C, H, W), not the (n, features) the checks use.
"""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError as SkNotFittedError  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from npae.models import (PCA, Autoencoder, ContractiveAutoencoder,  # noqa: E402
                         DenoisingAutoencoder, Eigenfaces, LinearAutoencoder, NotFittedError,
                         PredictiveSparseDecomposition, StackedAutoencoder)

_AE = dict(n_hidden=3, decoder="linear", loss="squared", n_epochs=2, batch_size=16,
           learning_rate=1e-2, random_state=0)

ESTIMATORS = [
    PCA(),
    PCA(n_components=1, solver="eigh"),
    LinearAutoencoder(n_components=1, n_epochs=3, tol=0.0, random_state=0),
    # every gradient-trained model with its defaults (the squared-error pair where the data
    # is not in [0, 1]): a default that diverges or errors on the checks' data is a bug
    LinearAutoencoder(n_components=2),
    LinearAutoencoder(n_components=2, tied=True),
    Autoencoder(decoder="linear", loss="squared"),
    DenoisingAutoencoder(decoder="linear", loss="squared"),
    ContractiveAutoencoder(decoder="linear", loss="squared"),
    StackedAutoencoder(decoder="linear", loss="squared"),
    Autoencoder(**_AE),
    Autoencoder(**{**_AE, "tied": False, "dtype": "float32"}),
    DenoisingAutoencoder(**_AE),
    ContractiveAutoencoder(**_AE),
    PredictiveSparseDecomposition(n_atoms=3, n_iter=1, batch_size=16, z_max_iter=50,
                                  random_state=0),
    StackedAutoencoder((3, 2), decoder="linear", loss="squared", pretrain_epochs=1,
                       finetune_epochs=1, batch_size=16, random_state=0),
    Eigenfaces(),  # on flattened images: rows of X are images
]

#: checks that cannot apply, with the reason; keep this short. Empty: every check passes.
EXPECTED_FAILED = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


with warnings.catch_warnings():
    # scikit-learn warns that npae's classes do not inherit its BaseEstimator: by design
    # (npae has no runtime dependency on it; tags come from BaseEstimator.__sklearn_tags__)
    warnings.filterwarnings("ignore", "Estimator .* does not inherit from")
    _with_checks = parametrize_with_checks(ESTIMATORS,
                                           expected_failed_checks=_expected_failed)


@_with_checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
def test_npae_never_imports_sklearn():
    """Fitting, tagging-free use, errors and save/load all work without scikit-learn loaded."""
    code = (
        "import sys, numpy as np, npae\n"
        "from npae.models import PCA, Autoencoder\n"
        "X = np.random.default_rng(0).random((20, 4))\n"
        "PCA(2).fit(X).transform(X)\n"
        "Autoencoder(2, n_epochs=1, random_state=0).fit(X).fit_transform(X)\n"
        "try:\n    PCA().transform(X)\nexcept ValueError:\n    pass\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'sklearn'], 'sklearn imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loss_is_a_plain_hyperparameter_for_clone():
    X = np.random.default_rng(0).random((20, 4))
    ae = Autoencoder(loss="squared", decoder="linear", n_hidden=2, n_epochs=1, random_state=0)
    assert type(ae.get_params()["loss"]) is str          # what clone() copies and compares
    twin = clone(ae)
    assert twin.loss == "squared" and twin.get_params() == ae.get_params()
    twin.fit(X)
    assert type(twin.loss) is str and np.isfinite(twin.objective(X))


def test_every_gradient_trained_model_has_objective_and_plain_hyperparameters():
    """``objective(X)`` on every gradient-trained model; no method shares a hyper-parameter's
    name (``loss`` is a plain string, nothing else)."""
    import inspect

    import npae.models as models
    from npae.models.base import GradientModelMixin
    trained = [c for c in vars(models).values()
               if isinstance(c, type) and issubclass(c, GradientModelMixin)]
    assert len(trained) >= 7
    for cls in trained:
        assert "X" in inspect.signature(cls.objective).parameters, cls
        assert not hasattr(cls, "loss"), cls
        for name in cls._param_names():
            assert not callable(inspect.getattr_static(cls, name, None)), (cls, name)


def test_not_fitted_error_is_sklearns_when_sklearn_is_loaded():
    with pytest.raises(SkNotFittedError) as info:
        PCA().transform(np.ones((2, 2)))
    assert isinstance(info.value, NotFittedError)
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, NotFittedError) and again.args == info.value.args


def test_in_pipelines_and_cross_validation():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    codes = make_pipeline(MinMaxScaler(), Autoencoder(3, n_epochs=2, random_state=0)).fit_transform(X)
    assert codes.shape == (40, 3) and np.all((codes > 0) & (codes < 1))
    Z = make_pipeline(StandardScaler(), PCA(2)).fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)  # centred codes
    # two well separated "faces": recognition by nearest code is perfect under CV
    y = np.tile([0, 1], 20)  # both classes in every (unstratified) fold
    X[y == 1] += 10.0
    assert cross_val_score(Eigenfaces(2), X, y, cv=2).tolist() == [1.0, 1.0]
