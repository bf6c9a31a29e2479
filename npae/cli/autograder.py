"""``npae autograder COURSE.py --out autograder.zip``: the zip a Gradescope assignment takes.

It holds ``setup.sh`` (installs the npae it carries: npae is on no package index),
``run_autograder`` (finds the submission whatever its name, .py or .ipynb; derives the seed
from the submission's id in ``submission_metadata.json``, so a regrade reproduces the grade;
runs ``npae check`` as root, so the answers run as a uid of their own; writes
``results/results.json``), the course file, and npae's source (``npae-src/``, the package
tree with its build files, copied from the npae this command runs).

``run_autograder`` takes its root from ``NPAE_AUTOGRADER_ROOT`` (default ``/autograder``) and
its Python from ``NPAE_PYTHON`` (default ``python3``), so it can be tried in a copy of the tree.
"""
from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

from ..exceptions import UsageError

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update
    apt-get install -y python3 python3-pip
fi
python3 -m pip install --break-system-packages ./npae-src 2>/dev/null \\
    || python3 -m pip install ./npae-src
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this, as root, for every submission.
set -u
ROOT="${{NPAE_AUTOGRADER_ROOT:-/autograder}}"
PY="${{NPAE_PYTHON:-python3}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
# the course file (references, hidden input sets) is root's alone: the answers run as
# another user and must not read it
chmod -R go-rwx "$ROOT/source" 2>/dev/null || true
chmod 755 "$ROOT/results"

SUBMISSION=""
for pattern in '*.py' '*.ipynb'; do
    SUBMISSION="$(find "$ROOT/submission" -type f -name "$pattern" \\
        -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' 2>/dev/null \\
        | LC_ALL=C sort | head -n 1)"
    [ -n "$SUBMISSION" ] && break
done
if [ -z "$SUBMISSION" ]; then
    printf '%s\\n' '{{"score": 0.0, "output": "No .py or .ipynb file was found in the submission: upload your answers file.", "tests": []}}' > "$RESULTS"
    exit 0
fi

SEED="$("$PY" - "$ROOT/submission_metadata.json" <<'PYEOF'
import json, sys, zlib
try:
    with open(sys.argv[1]) as f:
        ident = json.load(f).get("id", 0)
except (OSError, ValueError, AttributeError):
    ident = 0
print(zlib.crc32(str(ident).encode()) % 2 ** 31)
PYEOF
)"
echo "grading $(basename "$SUBMISSION") with seed $SEED"

"$PY" -m npae check "$SUBMISSION" --exercises "$ROOT/source/{course}" --seed "$SEED" \\
    --format gradescope --output "$RESULTS"
status=$?
if [ ! -s "$RESULTS" ]; then
    printf '%s\\n' '{{"score": 0.0, "output": "The grader could not check this submission (npae check exited with status '"$status"').", "tests": []}}' > "$RESULTS"
fi
exit 0
"""

#: what of npae's source tree the zip carries
_TREE_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "README.md", "LICENSE")


def _source_root():
    import npae
    root = Path(npae.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() and not (root / "setup.py").is_file():
        raise UsageError(f"npae's source tree (with its pyproject.toml) is not at {root}: "
                         "build the autograder from a checkout or an editable install")
    return root


def build_zip(course, out):
    """Write the autograder zip for the course file ``course`` to ``out``."""
    from .._io import atomic_write
    from ..exercises.course import load_course
    load_course(course)                      # a broken course file fails here, not on upload
    course = Path(course)
    root = _source_root()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name, text, mode=0o644):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
        add("setup.sh", SETUP_SH, 0o755)
        add("run_autograder", RUN_AUTOGRADER.format(course=course.name), 0o755)
        add(course.name, course.read_bytes())
        for name in _TREE_FILES:
            if (root / name).is_file():
                add(f"npae-src/{name}", (root / name).read_bytes())
        for path in sorted((root / "npae").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                add(f"npae-src/{path.relative_to(root).as_posix()}", path.read_bytes())
    data = buf.getvalue()
    atomic_write(out, lambda f: f.write(data))
    return Path(out)


def _add_autograder(sub):
    p = sub.add_parser("autograder", help="build a Gradescope autograder zip for a course file",
                       description="Write the zip a Gradescope programming assignment takes: "
                       "setup.sh (installs the npae it carries), run_autograder (finds the "
                       "submission, .py or .ipynb, seeds its inputs from the submission's id, "
                       "checks it with the answers running as a user of their own, writes "
                       "results.json) and COURSE.py.")
    p.add_argument("course", metavar="COURSE.py", help="the course file of exercises")
    p.add_argument("--out", "-o", metavar="ZIP", default="autograder.zip",
                   help="where to write the zip (default: autograder.zip)")
    p.set_defaults(func=_cmd_autograder)


def _cmd_autograder(args):
    from ..exercises.course import CourseFileError
    if os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a directory; give a file name")
    try:
        path = build_zip(args.course, args.out)
    except CourseFileError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write --out {args.out!r}: {exc.strerror or exc}") from None
    print(f"wrote {path}: upload it as the assignment's autograder (Gradescope: Configure "
          "Autograder, Zip file upload)", file=sys.stdout)
    return 0
