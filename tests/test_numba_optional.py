"""npae without Numba: where Numba cannot be imported, or NPAE_DISABLE_NUMBA=1 asks for it,
npae imports, says once that it runs the NumPy twins, and trains; and the deferred kernels
(compiled in the background after a run's first calls) give the bits their twins give.

The whole quick subset runs this way too: ``NPAE_DISABLE_NUMBA=1 python -m pytest -m "not
slow"`` (README, "Without Numba").
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from npae import _numba

ROOT = Path(__file__).resolve().parents[1]

# a conv fit and a dense fit on a few images; prints the warnings npae gave
SCRIPT = textwrap.dedent("""
    import warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import npae
        from npae import _numba
        from npae.exceptions import NumbaUnavailableWarning
        from npae.models.autoencoder import Autoencoder
        from npae.models.conv import ConvAutoencoder
        import numpy as np
        rng = np.random.default_rng(0)
        X = rng.random((40, 1, 28, 28)).astype(np.float32)
        conv = ConvAutoencoder(n_epochs=1, batch_size=20, random_state=0, verbose=False).fit(X)
        dense = Autoencoder(16, n_epochs=2, batch_size=20, random_state=0,
                            verbose=False).fit(X.reshape(40, -1))
        assert np.isfinite(conv.history_["loss"][-1]) and np.isfinite(dense.history_["loss"][-1])
        assert np.isfinite(conv.transform(X[:3])).all()
    ours = [w for w in caught if issubclass(w.category, NumbaUnavailableWarning)]
    print("enabled", _numba.NUMBA_ENABLED)
    print("warnings", len(ours))
    print("message", ours[0].message if ours else "")
    print("numba_loaded", "numba" in __import__("sys").modules)
""")

# numba made unimportable, as on a Python it does not support yet
BLOCKER = textwrap.dedent("""
    import sys
    class _NoNumba:
        def find_spec(self, name, path=None, target=None):
            if name == "numba" or name.startswith("numba."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None
    sys.meta_path.insert(0, _NoNumba())
""")


def _run(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "NPAE_DISABLE_NUMBA"}
    full_env.update(PYTHONPATH=str(ROOT), **env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=full_env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def _fits_with_twins(code, **env):
    res = _run(code, **env)
    assert res["enabled"] == "False"
    assert res["warnings"] == "1"                       # said once, not per kernel or call
    assert "NumPy path" in res["message"] and "pip install numba" in res["message"]
    return res


@pytest.mark.slow
def test_fits_when_numba_cannot_be_imported():
    res = _fits_with_twins(BLOCKER + SCRIPT)
    assert "could not be imported" in res["message"]
    assert res["numba_loaded"] == "False"


@pytest.mark.slow
def test_fits_when_npae_disable_numba_is_set():
    res = _fits_with_twins(SCRIPT, NPAE_DISABLE_NUMBA="1")
    assert "NPAE_DISABLE_NUMBA" in res["message"]


def test_import_without_numba_warns_once_and_stubs_refuse():
    """Quick: import only. A kernel called directly without Numba refuses (its loops would
    run as Python), naming its twin; the entry point runs the twin."""
    code = BLOCKER + textwrap.dedent("""
        import warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import npae, npae.sparse_coding, npae.nn.pool_kernels as K
            import npae.optim_kernels as O
        import numpy as np
        from npae.exceptions import NumbaUnavailableWarning
        print("warnings", sum(issubclass(w.category, NumbaUnavailableWarning) for w in caught))
        try:
            O._adam_kernel(*[np.zeros(2)] * 4, *[0.5] * 7)
        except RuntimeError as e:
            print("refused", "NumPy twin" in str(e))
        x = np.random.default_rng(0).random((2, 3, 5, 5))
        y, arg = K.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0), (2, 2))
        print("twin", np.array_equal(y, K.maxpool2d_forward_numpy(x, (2, 2), (2, 2), (0, 0),
                                                                  (2, 2))[0]))
    """)
    res = _run(code)
    assert res == {"warnings": "1", "refused": "True", "twin": "True"}


@pytest.mark.skipif(not _numba.NUMBA_ENABLED, reason="needs Numba: compiles a kernel")
def test_deferred_kernel_serves_the_twin_first_then_compiles_in_the_background():
    @_numba.njit(cache=False)
    def double(a):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = 2.0 * a[i]
        return out

    d = _numba.Deferred(double, after=3)
    a = np.arange(4.0)
    try:
        assert [d.ready(a) for _ in range(2)] == [False, False] and d.thread is None
        assert d.ready(a) is False and d.thread is not None    # the 3rd call starts it
        d.thread.join(timeout=300)
        assert d.ready(a) is True and len(double.signatures) == 1
        np.testing.assert_array_equal(double(a), 2 * a)
    finally:
        _numba.Deferred.instances.remove(d)
