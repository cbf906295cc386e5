"""Sphinx configuration of the sk_replearn documentation.

Build (CI runs exactly this, after the tests)::

    python -m sphinx -W -b html docs docs/_build/html

It executes the gallery (``examples/plot_*.py``) and must stay free of
warnings, offline included.
"""

from __future__ import annotations

import builtins
import inspect
import os
import re
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

import sk_replearn  # noqa: E402

project = "sk_replearn"
author = "the sk_replearn developers"
copyright = "2026, the sk_replearn developers"
release = sk_replearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "benchmark_results",  # docs/_ext: the results of benchmarks/run_all.py
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "**/*.ipynb",
    "**/*.py.md5",
    "**/*.codeobj.json",
]

autosummary_generate = True
autodoc_default_options = {"members": True}
# The signature says it all; a type-hinted signature is repeated in the
# numpydoc "Parameters" section anyway.
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- intersphinx -------------------------------------------------------------
# The build must pass with -W on a machine without network (the machines
# this project builds on have none), and intersphinx warns for every
# inventory it cannot fetch. So each project's inventory is taken, in this
# order, from
#   1. docs/_intersphinx/<name>.inv, when that file exists (a cached copy of
#      <url>/objects.inv, e.g. saved with curl on a machine with network),
#   2. the web, when the project's host accepts a connection (not tried when
#      the environment variable SK_REPLEARN_DOCS_OFFLINE is set),
# and otherwise left out: its names are then printed as plain text rather
# than links, and a note (not a warning) says so. An inventory that is
# reachable but broken still warns, as it should.
_INTERSPHINX = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://pytorch.org/docs/stable/",
    "skorch": "https://skorch.readthedocs.io/en/stable/",
}
intersphinx_timeout = 5


def _reachable(urls: list[str], timeout: float = 3.0) -> set[str]:
    """The urls whose host accepts a TCP connection on port 443 in time.

    DNS lookups ignore socket timeouts, so each probe runs in a daemon
    thread that is simply abandoned when it takes too long.
    """
    ok: set[str] = set()

    def probe(url: str) -> None:
        try:
            socket.create_connection((urlsplit(url).hostname, 443), timeout).close()
            ok.add(url)
        except OSError:
            pass

    threads = [threading.Thread(target=probe, args=(u,), daemon=True) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return set(ok)


def _intersphinx_mapping() -> tuple[dict, list[str]]:
    local = {n: DOCS / "_intersphinx" / f"{n}.inv" for n in _INTERSPHINX}
    remote = [u for n, u in _INTERSPHINX.items() if not local[n].is_file()]
    online = set() if os.environ.get("SK_REPLEARN_DOCS_OFFLINE") else _reachable(remote)
    mapping, skipped = {}, []
    for name, url in _INTERSPHINX.items():
        if local[name].is_file():
            mapping[name] = (url, str(local[name]))
        elif url in online:
            mapping[name] = (url, None)
        else:
            skipped.append(name)
    if skipped:
        print(
            "intersphinx: no inventory for " + ", ".join(skipped) + " (offline and "
            "no copy in docs/_intersphinx/); their names are not linked."
        )
    return mapping, skipped


intersphinx_mapping, _NO_INVENTORY = _intersphinx_mapping()

# -- cross-references --------------------------------------------------------
# Every cross-reference must resolve, so that a dead link to an sk_replearn
# object (a renamed function, a class moved to another module, a name not on
# the API page) fails the -W build. The ignore list below exists only
# because other projects' inventories are unavailable offline: a reference
# into such a project (written in full, :class:`torch.nn.Module`, so that it
# links as soon as the inventory is there) cannot resolve and is ignored:
#   * a project of _INTERSPHINX only while its inventory was left out above
#     (the names are its top-level packages; "python" stands for the
#     standard library and the builtins, see below);
#   * the projects below, which are not in _INTERSPHINX, always.
# References to sk_replearn's own objects are NEVER ignored: each pattern
# must match the whole target and starts with another project's top-level
# package. A reference written "np.ndarray" is not ignored either: it would
# not link even with numpy's inventory (write numpy.ndarray).
_NEVER_INVENTORIED = [
    "accelerate",
    "dask",
    "joblib",
    "matplotlib",
    "pandas",
    "scipy",
    "threadpoolctl",
    "timm",
    "tokenizers",
    "torchvision",
    "transformers",
]
_unlinked = "|".join(_NEVER_INVENTORIED + [n for n in _NO_INVENTORY if n != "python"])
nitpick_ignore_regex = [(r"py:.*", rf"({_unlinked})(\..+)?")]
if "python" in _NO_INVENTORY:
    # Sphinx never reports builtin classes, exceptions, None and typing
    # names; what is left is the builtin functions (:func:`len`) and the
    # standard library, by dotted names (:func:`os.cpu_count`) or modules.
    _functions = "|".join(
        n
        for n, v in vars(builtins).items()
        if not n.startswith("_") and not inspect.isclass(v)
    )
    _stdlib = "|".join(
        sorted(n for n in sys.stdlib_module_names if not n.startswith("_"))
    )
    nitpick_ignore_regex += [
        (r"py:.*", _functions),
        (r"py:.*", rf"({_stdlib})\..+"),
        (r"py:mod", _stdlib),
    ]
nitpicky = True

# -- gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    # "Examples using X" on every API page (docs/_templates/autosummary).
    "doc_module": ("sk_replearn",),
    "backreferences_dir": "generated/backreferences",
    # A failing example fails the build, as any warning does.
    "abort_on_example_error": True,
}


# -- API pages ---------------------------------------------------------------
def _skip_foreign_member(app, what, name, obj, skip, options):
    """Document what sk_replearn defines, not what it inherits from elsewhere.

    The class template (docs/_templates/autosummary/class.rst) asks for
    inherited members, so that e.g. ``SimCLRTransformer.transform`` (defined
    on a private base class) is listed; members that come from scikit-learn,
    skorch or torch base classes (``get_params``, ``NeuralNet.fit``,
    ``nn.Module.train``, ...) are documented by those projects, and their
    docstrings link to labels that exist only in those projects' docs.
    """
    if what != "class":
        return None
    target = getattr(obj, "fget", obj)  # properties
    target = getattr(target, "__func__", target)  # class and static methods
    module = getattr(target, "__module__", None)
    if isinstance(module, str) and not module.startswith("sk_replearn"):
        return True
    return None


#: numpydoc sections whose entries are ``name : type`` (or a bare type).
_TYPED_SECTIONS = {
    "Parameters",
    "Other Parameters",
    "Attributes",
    "Returns",
    "Yields",
    "Receives",
    "Raises",
    "Warns",
}
_STAR = re.compile(r"(?<![\\\w*])\*(?=\w)")  # "*input_shape", not "p*p"
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=[\s,.;:)\]]|$)")  # "n_features_in_,"


def _plain_type_specs(app, what, name, obj, options, lines):
    """Show numpydoc type specs as the plain text they are written as.

    The docstrings write shapes the way scikit-learn does, with attribute
    names: ``X : array-like of shape (n_samples, *input_shape)``,
    ``mean_ : ndarray of shape (n_features_in_,)``. numpydoc pastes a type
    spec into the page as reST, where ``*input_shape`` opens an emphasis and
    ``n_features_in_`` is a hyperlink reference, both left dangling. Here,
    before numpydoc runs, the ``*`` and trailing ``_`` of the type part of
    each entry line are backslash-escaped, so they print as written; the
    descriptions below the entries are left alone.
    """
    section, indent = None, None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and set(nxt.strip()) == {"-"}:
            section, indent = line.strip(), None
            continue
        if (
            section not in _TYPED_SECTIONS
            or not line.strip()
            or set(line.strip()) == {"-"}
        ):
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width != indent:
            continue  # a description line
        head, sep, spec = line.partition(" : ")
        if not sep:
            head, spec = "", line  # a bare type, as in "Returns"
        spec = _TRAILING_UNDERSCORE.sub(r"\\_", _STAR.sub(r"\\*", spec))
        lines[i] = head + sep + spec


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_member)
    # before numpydoc (priority 500) turns the sections into reST
    app.connect("autodoc-process-docstring", _plain_type_specs, priority=100)


# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "sk_replearn"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
