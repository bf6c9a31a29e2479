"""Undercomplete versus overcomplete (issue 4, item 4): the overcomplete autoencoder copies."""
import numpy as np
import pytest

from npae.models.experiments import relative_error, undercomplete_vs_overcomplete
from conftest import sklearn_digits


@pytest.mark.slow
def test_overcomplete_copies_the_others_do_not():
    """Measured (1000 train / 300 test digits, 40 epochs; r = unexplained variance fraction):

    model          train  test   noise
    undercomplete  0.31   0.35   1.86
    overcomplete   0.007  0.014  0.078   <- reconstructs noise it never saw: it copies
    denoising      0.14   0.15   0.89
    contractive    0.10   0.12   0.89
    """
    X = sklearn_digits()[0]
    res = undercomplete_vs_overcomplete(X[:1000], X[-300:], random_state=0)
    print()
    for name, r in res.items():
        print(f"{name:14s} k={r['n_hidden']:3d}  train {r['train']:.3f}  test {r['test']:.3f}  "
              f"noise {r['noise']:.3f}")
    over = res["overcomplete"]
    # the copy: noise images reconstructed nearly as well as digits (>85% of the variance)
    assert over["noise"] < 0.15 and over["test"] < 0.05
    for name in ("undercomplete", "denoising", "contractive"):
        r = res[name]
        assert r["test"] < 0.5, name            # they did learn the digits ...
        assert r["noise"] > 0.7, name           # ... and not how to copy noise
        assert r["noise"] > 5 * over["noise"], name
        assert r["noise"] > 2 * r["test"], name


def test_relative_error_definition():
    class Mean:  # reconstructs every image as the set's mean image: r = 1 exactly
        def __init__(self, A):
            self.m = A.mean(0)

        def reconstruct(self, A):
            return np.broadcast_to(self.m, A.shape)

    A = np.random.default_rng(0).random((20, 5))
    assert relative_error(Mean(A), A) == pytest.approx(1.0, rel=1e-12)


def test_bad_sizes():
    X = sklearn_digits()[0][:50]
    with pytest.raises(ValueError, match="n_under < d < n_over"):
        undercomplete_vs_overcomplete(X, X, n_under=16, n_over=32)
    with pytest.raises(ValueError, match="features"):
        undercomplete_vs_overcomplete(X, X[:, :10])
