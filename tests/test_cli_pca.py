"""`npae pca --variance F`: K chosen by explained variance, and the K it kept reported."""
import re

import pytest

from npae.cli import main


def test_variance_reports_the_k_kept_and_it_is_sklearns(tmp_path, capsys):
    skl = pytest.importorskip("sklearn.decomposition")
    from npae.data import synthetic_digits
    assert main(["pca", "--data", "synthetic", "--n-train", "300", "--variance", "0.9",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    m = re.search(r"kept k = (\d+) components: they explain (0\.\d+) of the variance", text)
    assert m, text
    X, _ = synthetic_digits(300, seed=0)
    ref = skl.PCA(0.9, svd_solver="full").fit(X.reshape(300, -1))
    assert int(m.group(1)) == ref.n_components_
    assert float(m.group(2)) == pytest.approx(ref.explained_variance_ratio_.sum(), abs=1e-4)
    assert float(m.group(2)) > 0.9
    assert f"k = {ref.n_components_} (solver" in text
    assert (tmp_path / "scree.png").exists()


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2"])
def test_variance_out_of_range_is_a_clear_error(value, tmp_path, capsys):
    assert main(["pca", "--data", "synthetic", "--n-train", "50", "--variance", value,
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"argument --variance: {value} is out of range: expected a finite number in " \
        "(0, 1)" in err
