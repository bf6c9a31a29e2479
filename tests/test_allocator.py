"""npae._allocator: training keeps freed memory for the next step instead of faulting it in
again (glibc only). Each case runs in a fresh interpreter: the setting is process-wide."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the allocator setting exists on glibc only")

# two arrays of 2.4 MB made and freed per step, as a layer's outputs are: with glibc's
# defaults the heap's top is given back and faulted in again every step
_STEPS = textwrap.dedent("""
    import resource, sys, numpy as np
    {setup}
    def step():
        a = np.ones(300_000); b = np.ones(300_000); c = a + b
        del a, b
        return c
    step()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
""")


def _faults(setup, **env):
    out = subprocess.run([sys.executable, "-c", _STEPS.format(setup=setup)], check=True,
                         capture_output=True, text=True, env={**os.environ, **env})
    return int(out.stdout.split()[-1])


def test_training_steps_reuse_freed_memory():
    keep = ("from npae._allocator import keep_freed_memory\n"
            "assert keep_freed_memory() and keep_freed_memory()")   # once, then True again
    default = _faults("")
    assert default > 50 * 100              # the pattern does fault with glibc's defaults
    assert _faults(keep) < 100             # and hardly at all with the setting


def test_the_user_can_decline():
    decline = ("from npae._allocator import keep_freed_memory\n"
               "assert keep_freed_memory() is False")
    assert _faults(decline, NPAE_DEFAULT_MALLOC="1") > 50 * 100


def test_the_training_loop_sets_it():
    fit = ("import npae._allocator as A\n"
           "from npae.models import Autoencoder\n"
           "assert A._done is None\n"
           "X = np.random.default_rng(0).random((8, 6))\n"
           "Autoencoder(4, n_epochs=1, verbose=False).fit(X)\n"
           "assert A._done is True")
    assert _faults(fit) < 100
