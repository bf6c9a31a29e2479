import numpy as np
import pytest

from npae._validation import as_float_array, check_param, check_shape
from npae.models.base import BaseEstimator


def test_integers_and_bools_become_float64():
    assert as_float_array([[1, 2]]).dtype == np.float64
    assert as_float_array(np.array([[True]])).dtype == np.float64
    assert as_float_array(np.ones((1, 1), np.float32)).dtype == np.float32


@pytest.mark.parametrize("bad, exc, msg", [
    (np.array([[1 + 2j]]), TypeError, "complex"),
    (np.array([["a"]]), TypeError, "not numeric"),
    (np.array([[np.nan, 1.0]]), ValueError, r"1 non-finite value\(s\) \(first: NaN at index \(0, 0\)"),
    (np.array([[1.0, np.inf]]), ValueError, r"first: inf at index \(0, 1\)"),
    (np.zeros((0, 3)), ValueError, "empty"),
])
def test_bad_arrays_get_clear_errors(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        as_float_array(bad)


def test_1d_input_suggests_the_reshape():
    with pytest.raises(ValueError, match=r"2-D.*reshape\(-1, 1\)"):
        as_float_array(np.ones(3), ndim=2)


def test_check_param_names_argument_value_and_range():
    with pytest.raises(ValueError, match=r"nu=1.5 is out of range; it must lie in \[0, 1\)"):
        check_param("nu", 1.5, low=0, high=1, high_open=True)
    with pytest.raises(TypeError, match="n_hidden must be an integer"):
        check_param("n_hidden", 2.0, kind="int", low=1)
    with pytest.raises(ValueError, match="lam=nan must be finite"):
        check_param("lam", float("nan"), low=0)
    assert check_param("k", 3, kind="int", low=1) == 3


def test_check_shape_reports_expected_and_received():
    with pytest.raises(ValueError, match=r"\(2, 3\), expected \(any, 4\)"):
        check_shape(np.zeros((2, 3)), (None, 4))


class Toy(BaseEstimator):
    def __init__(self, n_hidden=3, lam=0.1):
        self.n_hidden = n_hidden
        self.lam = lam


def test_get_set_params_and_repr():
    t = Toy(lam=0.5)
    assert t.get_params() == {"lam": 0.5, "n_hidden": 3}
    assert t.set_params(n_hidden=7) is t and t.n_hidden == 7
    assert repr(t) == "Toy(lam=0.5, n_hidden=7)"
    with pytest.raises(ValueError, match="invalid parameter 'nhidden'"):
        t.set_params(nhidden=1)


def test_validate_data_tracks_n_features():
    t = Toy()
    t._validate_data(np.zeros((2, 4)), reset=True)
    assert t.n_features_in_ == 4
    with pytest.raises(ValueError, match="has 5 features.*fitted with 4"):
        t._validate_data(np.zeros((2, 5)), reset=False)
