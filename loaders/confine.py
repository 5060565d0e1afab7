"""Keep the app's sources inside one root folder.

The web app takes paths typed by whoever opens the page, so every file or directory a spec names
must resolve (symlinks followed) inside the root. ``..`` and symlinks that leave it are refused.
Dotted module specs (``package.module:fn``) import code from anywhere on ``sys.path``: the app
accepts them only when they came from its own command line, whose user already trusts that code.

>>> import tempfile, os
>>> root = tempfile.mkdtemp()
>>> confine_spec("sample:block:nnx", root)
'sample:block:nnx'
>>> confine_spec("../elsewhere/model.py:make", root)
Traceback (most recent call last):
...
inspector.errors.SourceError: source '../elsewhere/model.py:make' is outside the root folder ...
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from inspector.errors import SourceError
from loaders.spec import parse_spec


def confine_spec(text: str, root: str, *, trusted: Collection[str] = ()) -> str:
    """Return ``text`` if it is allowed under ``root``; raise ``SourceError`` saying why not.

    Relative paths are taken relative to ``root``; the spec is returned rewritten to the absolute
    path so later loading does not depend on the working directory.
    """
    text = text.strip()
    if text in trusted:
        return text
    if not Path(root).is_dir():
        raise SourceError(f"root folder {root!r} does not exist; set --root or INSPECTOR_ROOT")
    spec = parse_spec(text, base=root)
    if spec.kind == "sample":
        return text
    if spec.kind == "module":
        raise SourceError(f"source {text!r}: module specs run code from anywhere, so the app takes them only "
                          "from its command line (streamlit run app.py -- --left SPEC); give a file "
                          "path under the root instead")
    base = Path(root).resolve()
    target = (base / spec.target).resolve() if not os.path.isabs(spec.target) else Path(spec.target).resolve()
    if target != base and base not in target.parents:
        raise SourceError(f"source {text!r} is outside the root folder {str(base)!r}; the app reads only "
                          "files under its root (set --root or INSPECTOR_ROOT to change it)")
    rebuilt = str(target)
    if spec.kind == "file":
        return f"{rebuilt}:{spec.attr}"
    return f"{rebuilt}@{spec.step}" if spec.step is not None else rebuilt
