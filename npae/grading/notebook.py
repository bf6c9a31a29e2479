"""Notebook submissions: the code cells of an .ipynb as one Python file.

IPython's magics (``%time``, ``%%timeit``) and shell escapes (``!pip install``) are not
Python: lines starting with ``%`` or ``!`` are left out, and the caller says so. Each cell is
preceded by a ``# cell N`` comment, so a message naming a line can be traced to its cell.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["is_notebook", "notebook_code", "NotebookError"]


class NotebookError(ValueError):
    """The file is not a Jupyter notebook npae can read."""


def is_notebook(path):
    return Path(path).suffix.lower() == ".ipynb"


def notebook_code(path):
    """(source, skipped): the code cells of the notebook at ``path`` joined into one module,
    and the number of ``%``/``!`` lines left out."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        cells = doc["cells"]
        if not isinstance(cells, list):
            raise TypeError
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise NotebookError(f"{path.name} is not a Jupyter notebook (no JSON with a list of "
                            "cells)") from None
    parts, skipped = [], 0
    for n, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if text.lstrip().startswith("%%"):          # a cell magic: the whole cell is not Python
            skipped += len(text.splitlines())
            continue
        lines = []
        for line in text.splitlines():
            if line.lstrip().startswith(("%", "!")):
                skipped += 1
                indent = line[:len(line) - len(line.lstrip())]
                lines.append(f"{indent}pass  # left out: {line.strip()[:60]}")
            else:
                lines.append(line)
        parts.append(f"# cell {n}\n" + "\n".join(lines) + "\n")
    return "\n".join(parts), skipped
