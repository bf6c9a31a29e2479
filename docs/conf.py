"""Sphinx configuration of npae's documentation site.

Build it (from the repository's root):

    python -m pip install -e ".[docs]" && python -m sphinx -b html docs docs/_build/html

The build needs no network: the notebooks run on local data, and MathJax is served from the
site itself (``sphinx-mathjax-offline`` copies it into ``_static/mathjax``).
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))                       # autodoc documents this tree's npae
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

# The notebooks' kernels inherit this environment: this tree's npae on the path, one BLAS and
# Numba thread (fast mode's arrays are small; threads spinning on a busy machine cost more
# than they give), and Jupyter's inline figures even when the caller's shell sets a
# non-interactive backend such as Agg (the pages would have no figures).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ["NPAE_FAST"] = "1"

import npae  # noqa: E402
from npae_docs import data_choice  # noqa: E402

# the data the course pages run on, chosen once for the build and said on every page
npae_data_value, npae_data_words = data_choice()

project = "npae"
author = "npae's maintainers"
copyright = "npae's maintainers, MIT licence"
release = version = npae.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
    "sphinx-mathjax-offline",     # MathJax 3 copied into the site: math renders offline
    "npae_docs",                  # _ext/npae_docs.py: course pages, docstrings' equations
]

exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"

# MyST: $...$ and $$...$$ in the notebooks' markdown, ::: fences for notes
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "substitution"]
myst_substitutions = {"npae_data": npae_data_words}
myst_heading_anchors = 3

# MyST-NB: every notebook executed at build time (fast mode, see _ext/npae_docs.py); results
# cached in _build/.jupyter_cache, keyed by the cells' code, so a rebuild of an unchanged
# notebook does not run it again. An error in a notebook fails the build.
nb_execution_mode = os.environ.get("NPAE_DOCS_EXECUTE", "cache")
nb_execution_cache_path = str(ROOT / "docs" / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc: docstrings are numpydoc; their indented equation blocks are kept as written
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = [("Extra parameters", "params_style"),
                            ("Extra parameter", "params_style")]

html_theme = "pydata_sphinx_theme"
html_title = f"npae {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_static_path = []

suppress_warnings = ["myst.header"]
