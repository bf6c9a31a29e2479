"""scikit-learn's own PCA tests, run against npae's PCA.

The file ``sklearn/decomposition/tests/test_pca.py`` of the installed scikit-learn is loaded
(not copied) with its ``from sklearn.decomposition import PCA`` pointed at ``npae.models.PCA``
and its ``from sklearn.decomposition._pca import _assess_dimension, _infer_dimension`` at
npae's Minka functions; its test functions are then collected here as this module's own. So a
scikit-learn upgrade that changes PCA's behaviour (or adds a test) shows up in npae's CI.

scikit-learn's two conftest fixtures are supplied here: ``global_dtype`` runs float64 and,
as with ``SKLEARN_RUN_FLOAT32_TESTS=1``, float32; ``global_random_seed`` runs a few seeds
(a wider sweep is marked slow). Skipped, with the reason: the array-API cases (npae is
NumPy only) and the sparse cases (npae refuses sparse input with a TypeError that says to
call ``.toarray()``, checked by ``test_sparse_input_is_refused_clearly`` below).
"""
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
import sklearn.decomposition  # noqa: E402
import sklearn.decomposition._pca  # noqa: E402

import npae.models  # noqa: E402
from npae.models import _pca_solvers  # noqa: E402

SKLEARN_TEST = (Path(sklearn.decomposition.__file__).parent / "tests" / "test_pca.py")
if not SKLEARN_TEST.exists():  # pragma: no cover - a wheel built without its tests
    pytest.skip(f"scikit-learn {sklearn.__version__} ships no {SKLEARN_TEST}",
                allow_module_level=True)

CI_SEEDS = [0, 1, 42]
SLOW_SEEDS = [2, 3, 7, 13, 21, 37, 64, 99]

#: npae is NumPy only; these run scikit-learn's array-API machinery (torch, array_api_strict)
ARRAY_API = "array-API namespaces (torch, array_api_strict, ...): npae computes in NumPy only"
#: npae refuses sparse input (TypeError naming .toarray()), so these cannot apply
SPARSE = ("sparse input: npae refuses it with a TypeError that says to call .toarray() "
          "(test_sparse_input_is_refused_clearly)")
SPARSE_TESTS = {"test_pca_sparse", "test_pca_sparse_fit_transform", "test_sparse_pca_solver_error",
                "test_sparse_pca_auto_arpack_singular_values_consistency"}


def _proxy(real, **overrides):
    """A module that is ``real`` except for ``overrides``."""
    mod = types.ModuleType(real.__name__)
    mod.__dict__.update(vars(real))
    mod.__dict__.update(overrides)
    return mod


def _load_sklearn_tests():
    names = ("sklearn.decomposition", "sklearn.decomposition._pca")
    saved = {n: sys.modules[n] for n in names}
    sys.modules["sklearn.decomposition"] = _proxy(sklearn.decomposition, PCA=npae.models.PCA)
    sys.modules["sklearn.decomposition._pca"] = _proxy(
        sklearn.decomposition._pca, _assess_dimension=_pca_solvers.assess_dimension,
        _infer_dimension=_pca_solvers.infer_dimension)
    try:
        spec = importlib.util.spec_from_file_location("sklearn_test_pca_on_npae", SKLEARN_TEST)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules.update(saved)   # the rest of the suite sees the real scikit-learn
    assert module.PCA is npae.models.PCA
    return module


_sk = _load_sklearn_tests()

for _name, _func in vars(_sk).items():
    if not (_name.startswith("test_") and callable(_func)):
        continue
    if "array_api" in _name:
        _func = pytest.mark.skip(reason=ARRAY_API)(_func)
    elif _name in SPARSE_TESTS:
        _func = pytest.mark.skip(reason=SPARSE)(_func)
    globals()[f"test_sklearn_{_name[len('test_'):]}"] = _func
del _name, _func


@pytest.fixture(params=CI_SEEDS + [pytest.param(s, marks=pytest.mark.slow) for s in SLOW_SEEDS])
def global_random_seed(request):
    """scikit-learn's fixture: the seed its tests must pass for whatever value it takes."""
    return request.param


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def global_dtype(request):
    """scikit-learn's fixture, with its float32 cases on (SKLEARN_RUN_FLOAT32_TESTS=1)."""
    return request.param


# -- what the redirection relies on -------------------------------------------------------------
def test_the_loaded_file_is_sklearns_and_uses_npae():
    assert _sk.__file__ == str(SKLEARN_TEST)
    assert _sk.PCA is npae.models.PCA
    assert _sk._infer_dimension is _pca_solvers.infer_dimension
    assert sys.modules["sklearn.decomposition"].PCA is not npae.models.PCA  # restored
    n_tests = sum(name.startswith("test_sklearn_") for name in globals())
    assert n_tests >= 40, n_tests  # scikit-learn 1.9 has 47


@pytest.mark.parametrize("solver", ["auto", "full", "covariance_eigh", "arpack", "randomized"])
def test_sparse_input_is_refused_clearly(solver):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X = scipy_sparse.random(50, 10, density=0.3, format="csr", random_state=0)
    with pytest.raises(TypeError, match=r"sparse.*X\.toarray\(\)"):
        npae.models.PCA(2, svd_solver=solver).fit(X)
