"""The site's own Sphinx glue: the course pages, the docstrings' equations, guarded API pages.

* ``prepare_course`` copies each notebook of ``notebooks/`` to ``docs/course/`` (generated, not
  committed) with two cells added after the notebook's first one: a hidden setup cell that puts
  the kernel in fast mode on the data chosen for this build, and a note that tells the reader so.
  Putting the choice in a cell (not only in the environment) also makes it part of what the
  execution cache keys on, so a build on other data runs the notebooks again.
* ``literal_equations`` shows the docstrings' indented blocks (the numbered equations, written
  as plain text so that they read the same in ``help()`` and beside the slide) as preformatted
  blocks, line breaks and alignment kept, instead of letting reStructuredText reflow them.
* ``npae-automodule`` documents a module when it can be imported and says so when it cannot
  (a page written for a package a version may not have yet).
"""
from __future__ import annotations

import copy
import importlib
import json
import os
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
COURSE = ROOT / "docs" / "course"

# The data a notebook reads when it does not call find_dataset (it then reads the data set
# chosen for the build). Keyed by the notebook's number.
OWN_DATA = {
    "01": "points drawn in the notebook (Gaussian, with a known spectrum) and npae's built-in "
          "synthetic digits",
    "02": "scikit-image's `lfw_subset` (200 faces and non-faces, 25 x 25 pixels, installed with "
          "scikit-image)",
}

# numpydoc sections napoleon knows (or is told about in conf.py); any other underlined heading
# in a docstring becomes a rubric, since reStructuredText allows no section inside a docstring
_SECTIONS = {"parameters", "returns", "yields", "raises", "attributes", "notes", "examples",
             "see also", "warns", "warnings", "references", "methods", "other parameters",
             "keyword arguments", "extra parameters", "extra parameter"}
_FREE_SECTIONS = {"notes", "examples", "references", "warnings", "see also"}


def data_choice():
    """(value for NPAE_NOTEBOOK_DATA, words for the reader) for the data this build uses."""
    from npae.data import find_dataset

    choice = find_dataset(os.environ.get("NPAE_NOTEBOOK_DATA") or None)
    if choice.name == "synthetic":
        return "synthetic", ("npae's built-in synthetic digits (28 x 28 digits rendered from "
                             "matplotlib's fonts; no MNIST or Fashion-MNIST was installed "
                             "where this site was built)")
    if choice.name == "fashion-mnist" and choice.reason == "installed":
        return "fashion-mnist", (f"Fashion-MNIST (Debian's `dataset-fashion-mnist`, read from "
                                 f"`{choice.path}`)")
    label = "Fashion-MNIST" if choice.name == "fashion-mnist" else "MNIST"
    return choice.path, f"{label} (the files in `{choice.path}`)"


def _notebook_data(nb, number, chosen_words):
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    own = OWN_DATA.get(number)
    uses_choice = "find_dataset" in code
    if own and uses_choice:
        return f"{own}; and {chosen_words}"
    return own or (chosen_words if uses_choice else "data generated in the notebook itself")


def _setup_cell(data_value):
    source = (
        "# added by the documentation build (hidden on the page): fast mode, one data set,\n"
        "# and Jupyter's inline figures for the Figure objects npae.plot returns\n"
        "%matplotlib inline\n"
        "import os\n"
        "os.environ['NPAE_FAST'] = '1'\n"
        f"os.environ['NPAE_NOTEBOOK_DATA'] = {data_value!r}\n")
    return {"cell_type": "code", "execution_count": None, "id": "npae-docs-setup",
            "metadata": {"tags": ["remove-cell"]}, "outputs": [], "source": source}


def _note_cell(data_words):
    source = (
        ":::{note}\n"
        "This page was executed when the site was built, in **fast mode** (`NPAE_FAST=1`): "
        "smaller data sets and fewer epochs than a full run, so its numbers and figures are "
        "rougher than the ones the notebook gives in full mode. Every `assert` cell still ran "
        "and passed.\n\n"
        f"**Data on this page:** {data_words}.\n\n"
        "Run it yourself in full mode: `python -m pip install -e \".[notebooks]\" && "
        "jupyter lab notebooks/` (see {doc}`/installation`).\n"
        ":::\n")
    return {"cell_type": "markdown", "id": "npae-docs-note", "metadata": {}, "source": source}


def prepare_course(app, config):
    """Copy the notebooks into docs/course/ with the build's setup and note cells."""
    data_value, data_words = config.npae_data_value, config.npae_data_words
    COURSE.mkdir(exist_ok=True)
    wanted = set()
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        out = copy.deepcopy(nb)
        words = _notebook_data(nb, path.name[:2], data_words)
        out["cells"][1:1] = [_setup_cell(data_value), _note_cell(words)]
        text = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
        target = COURSE / path.name
        wanted.add(target.name)
        # rewrite only on change: Sphinx re-reads (and re-executes) what has a newer mtime
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    for stale in COURSE.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()


def literal_equations(app, what, name, obj, options, lines):
    """The docstring as its author laid it out, in reStructuredText that keeps that layout.

    Indented blocks (the numbered equations) and column-aligned tables become literal blocks;
    underlined headings that are not numpydoc sections become rubrics; characters that are
    plain text in a docstring but markup in reStructuredText (``|a|``, ``mean_``) are escaped.
    The numpydoc sections (Parameters, Attributes, ...) are left to napoleon.
    """
    out, section, base, literal = [], None, None, False
    for para in _paragraphs(lines):
        first = para[0]
        indent = _indent(first)
        if len(para) == 2 and _is_underline(para[1], first):
            title = first.strip()
            section, base, literal = title.lower(), indent, False
            if section in _SECTIONS:
                out += para
                # free text (Notes, Examples): its indented blocks are equations too
                section = None if section in _FREE_SECTIONS else section
            else:
                section = None
                out += [" " * indent + f".. rubric:: {title}"]
            out.append("")
            continue
        if base is None:
            base = indent
        if section is not None:
            # a numpydoc section: entries stay as napoleon reads them, descriptions escaped
            base = min(base, indent)
            out += [_escape_entry(ln) if _indent(ln) <= base else _escape(ln)
                    for ln in para] + [""]
            continue
        if indent > base and not first.lstrip().startswith((".. ", ">>>")):
            if not literal and not _ends_literal(out):
                out += [" " * base + "::", ""]
            out += para + [""]
            literal = True
            continue
        base, literal = indent, False
        if _is_ragged(para) and not first.lstrip().startswith((".. ", ">>>")):
            out += [" " * indent + "::", ""] + ["    " + ln for ln in para] + [""]
            continue
        out += [_escape(ln) for ln in para] + [""]
    lines[:] = out


def _paragraphs(lines):
    para = []
    for line in lines:
        if line.strip():
            para.append(line.rstrip())
        elif para:
            yield from _split_headings(para)
            para = []
    if para:
        yield from _split_headings(para)


def _split_headings(para):
    """A heading's two lines are a paragraph of their own, even with no blank line after them."""
    i = 0
    for j in range(1, len(para)):
        if _is_underline(para[j], para[j - 1]) and _indent(para[j]) == _indent(para[j - 1]):
            if j - 1 > i:
                yield para[i:j - 1]
            yield para[j - 1:j + 1]
            i = j + 1
    if i < len(para):
        yield para[i:]


def _indent(line):
    return len(line) - len(line.lstrip())


def _is_underline(line, title):
    s = line.strip()
    return len(s) >= 3 and set(s) <= set("-=~^") and len(s) >= len(title.strip()) - 1


def _ends_literal(out):
    for prev in reversed(out):
        if prev.strip():
            return prev.rstrip().endswith("::")
    return False


_BULLET = re.compile(r"^\s*([-*+\u2022]|\d+[.)]|\(\d+\))\s")


def _is_ragged(para):
    """A paragraph laid out as a table: later lines indented past the first, or aligned columns."""
    if _BULLET.match(para[0]) or len(para) < 2:
        return False
    first = _indent(para[0])
    deeper = [i for i, ln in enumerate(para) if _indent(ln) > first]
    if not deeper:
        return False
    # "term\n    definition" is a reStructuredText definition list: leave it to docutils,
    # unless its definition is laid out in turn (nested or aligned lines)
    return (deeper[0] >= 2 or len({_indent(ln) for ln in para}) >= 3
            or re.search(r"\S {2,}\S", para[0].strip()) is not None)


def _escape_entry(line):
    """A numpydoc entry "name : type": napoleon reads the name, the type is text."""
    name, sep, rest = line.partition(" : ")
    return name + sep + _escape(rest) if sep else line


_CODE = re.compile(r"(``.+?``|`[^`]+`_?)")


def _escape(line):
    parts = _CODE.split(line)
    for k in range(0, len(parts), 2):  # the even parts are outside ``code`` and `roles`
        parts[k] = re.sub(r"(?<=\w)_(?=\W|$)", r"\\_", parts[k].replace("|", r"\|"))
    return "".join(parts)


class GuardedAutomodule(Directive):
    """``automodule`` with ``:members:`` for an importable module, else a note saying it is absent."""

    required_arguments = 1
    option_spec = {"no-members": directives.flag}

    def run(self):
        name = self.arguments[0]
        try:
            importlib.import_module(name)
        except ImportError as exc:
            logger.info(f"npae-automodule: {name} is not importable here ({exc})")
            para = nodes.paragraph(text=f"{name} is not part of this version of npae.")
            return [nodes.note("", para)]
        options = {} if "no-members" in self.options else {"members": None,
                                                              "show-inheritance": None}
        # autodoc's own directive (whichever class this Sphinx registers), run in place
        automodule, _ = directives.directive("automodule", self.state.memo.language,
                                             self.state.document)
        directive = automodule("automodule", [name], options, StringList(), self.lineno,
                               self.content_offset, self.block_text, self.state,
                               self.state_machine)
        return directive.run()


def setup(app):
    app.add_config_value("npae_data_value", "synthetic", "env")
    app.add_config_value("npae_data_words", "npae's built-in synthetic digits", "env")
    app.connect("config-inited", prepare_course)
    # before napoleon (priority 500) turns the numpydoc sections into field lists
    app.connect("autodoc-process-docstring", literal_equations, priority=400)
    app.add_directive("npae-automodule", GuardedAutomodule)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
