"""The documentation site, built and opened in a real browser with no network.

Builds ``docs/`` with Sphinx (or checks the build ``NPAE_DOCS_HTML`` points to), serves it on
127.0.0.1 and opens its pages in headless Chromium with every host name unresolvable
(``--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"``: the site's own server is the
only address it can reach), then checks what a reader sees:

* the math on the notebook pages and on a model's API page is rendered by MathJax (every
  formula of the page became an ``mjx-container``, none is a MathJax error), from the site's
  own copy of MathJax;
* every notebook page shows its figures (``img`` elements whose files are real PNGs) and no
  figure printed as ``<Figure size ...>`` text, no progress-bar widget placeholder;
* every internal link and fragment of every page resolves, and no page loads anything from
  another host;
* the search page finds a word that is on the site.

Skips where Sphinx or Chromium (Debian's ``chromium``) is missing.
"""
import functools
import html
import html.parser
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BUILD_TIMEOUT = 1800  # seconds: the build executes every notebook (fast mode) on a cold cache


def _require_docs_tools():
    for module in ("sphinx", "myst_nb", "pydata_sphinx_theme", "sphinxarg"):
        pytest.importorskip(module, reason=f"{module} is not installed: "
                                           "python -m pip install -e \".[docs]\"")
    try:
        import importlib.util
        found = importlib.util.find_spec("sphinx-mathjax-offline") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        pytest.skip("sphinx-mathjax-offline is not installed: python -m pip install -e \".[docs]\"")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder: NPAE_DOCS_HTML's, or a fresh build of docs/."""
    if CHROMIUM is None:
        pytest.skip("no Chromium to open the pages in (Debian: apt-get install chromium)")
    given = os.environ.get("NPAE_DOCS_HTML")
    if given:
        path = Path(given)
        assert (path / "index.html").is_file(), f"NPAE_DOCS_HTML={given} holds no built site"
        return path
    _require_docs_tools()
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "docs", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, f"the docs build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


@pytest.fixture(scope="module")
def server(site):
    """The site over http on 127.0.0.1 (an IP literal: no name to resolve)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")

    def dump_dom(url, screenshot=None):
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                # every name unresolvable; the rule would catch the server's IP literal too
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000", "--window-size=1280,2000"]
        args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        proc = subprocess.run(args + [url], capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"chromium failed on {url}:\n{proc.stderr[-2000:]}"
        return proc.stdout

    return dump_dom


class _Page(html.parser.HTMLParser):
    """The parts of a page the checks read: links, sources, ids, images, math, text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.sources, self.ids, self.imgs = [], [], set(), []
        self.tags = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(attrs["href"])
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.sources.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.sources.append(attrs["href"])
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))


def _parse(text):
    page = _Page()
    page.feed(text)
    return page


def _math_count(text):
    """Formulas MathJax should typeset in a page as Sphinx wrote it."""
    return len(re.findall(r'class="math notranslate nohighlight"', text))


def _check_math(dom, static, where):
    want = _math_count(static)
    assert want > 0, f"{where}: no math on the page to render"
    got = dom.count("<mjx-container")
    assert got >= want, f"{where}: {got} of {want} formulas rendered by MathJax"
    assert "<mjx-merror" not in dom, f"{where}: MathJax reports a TeX error"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_renders_math_and_figures(site, server, browser, name):
    path = site / "course" / f"{name}.html"
    assert path.is_file(), f"no page for notebooks/{name}.ipynb"
    static = path.read_text(encoding="utf-8")
    dom = browser(f"{server}/course/{name}.html")
    _check_math(dom, static, name)
    page = _parse(dom)
    pngs = [src for src in page.imgs if src.endswith(".png")]
    assert pngs, f"{name}: no figure on the page"
    for src in pngs:
        data = (path.parent / unquote(urlsplit(src).path)).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, f"{name}: {src} is no figure"
    # a figure Jupyter could not draw shows as its repr; a tqdm bar as a widget placeholder
    assert "&lt;Figure size" not in static, f"{name}: a figure printed as text, not drawn"
    for placeholder in ("widget-view+json", "IProgress", "HBox(children"):
        assert placeholder not in static, f"{name}: a progress-bar widget left on the page"
    assert "fast mode" in static and "Data on this page" in static, \
        f"{name}: the page does not say that it ran in fast mode and on which data"


def test_model_page_shows_numbered_equations_and_links_its_notebook(site, server, browser):
    static = (site / "api" / "models" / "vae.html").read_text(encoding="utf-8")
    pre = " ".join(re.findall(r"<pre>(.*?)</pre>", static, flags=re.S))
    # the docstring's numbered equations, as written (one line each, numbers kept)
    for line in ("(6)  KL(q(z|x) || N(0, I))", "(10) ∂L/∂μ = ∂L/∂z + μ / n"):
        assert line in html.unescape(re.sub(r"<[^>]+>", "", pre)), \
            f"{line!r} is not shown as written"
    assert 'href="../../course/11_variational_autoencoder.html"' in static
    dom = browser(f"{server}/course/11_variational_autoencoder.html")
    _check_math(dom, (site / "course" / "11_variational_autoencoder.html").read_text("utf-8"),
                "11_variational_autoencoder")


def test_internal_links_resolve_and_nothing_loads_from_another_host(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 30
    parsed, broken, remote = {}, [], []

    def ids_of(path):
        if path not in parsed:
            parsed[path] = _parse(path.read_text(encoding="utf-8")).ids
        return parsed[path]

    for page in pages:
        info = _parse(page.read_text(encoding="utf-8"))
        parsed[page] = info.ids
        for src in info.sources:
            if urlsplit(src).scheme in ("http", "https") or src.startswith("//"):
                remote.append(f"{page.relative_to(site)}: {src}")
        for href in info.links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//"):
                continue                                  # an external link, not a resource
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {href}")
            elif parts.fragment and target.suffix == ".html" \
                    and unquote(parts.fragment) not in ids_of(target):
                broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert not broken, f"{len(broken)} broken links, e.g.\n" + "\n".join(broken[:20])
    assert not remote, "pages load from other hosts:\n" + "\n".join(remote[:20])


def test_search_page_finds_a_word_of_the_site(site, server, browser):
    assert (site / "searchindex.js").stat().st_size > 10_000
    dom = browser(f"{server}/search.html?q=reparameterization")
    results = re.search(r'<ul[^>]*class="search"[^>]*>(.*?)</ul>', dom, flags=re.S)
    assert results, "the search page shows no result list"
    hits = re.findall(r'<a[^>]+href="([^"]+)"', results.group(1))
    assert any("11_variational_autoencoder" in h or "vae" in h for h in hits), hits[:10]


def test_home_page_says_where_the_figures_come_from(site):
    text = (site / "index.html").read_text(encoding="utf-8")
    assert "Where this site" in text and "fast mode" in text
    assert any(words in text for words in ("Fashion-MNIST", "synthetic digits", "MNIST"))
