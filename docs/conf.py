"""Sphinx configuration for skae's documentation (``make docs``)."""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "2026, the skae developers"
version = release = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json",
                    "images/figures.md"]
root_doc = "index"

autosummary_generate = True
# scikit-learn generates the set_*_request methods of metadata routing; their
# docstrings point into its own glossary, which this site does not have.
autodoc_default_options = {
    "members": True,
    "exclude-members": ",".join(f"set_{method}_request" for method in (
        "fit", "partial_fit", "score", "transform", "inverse_transform")),
}
# numpydoc lists the methods itself; autosummary's class template lists none.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    "torch": ("https://pytorch.org/docs/stable", None),
}
# The build runs offline (CI has no network): intersphinx stays configured for
# builds that have one, and its fetch failures are not errors.
if os.environ.get("SKAE_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

html_theme = "pydata_sphinx_theme"
html_title = f"skae {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    # The examples print what they mean to show; the value of a block's last
    # line (a matplotlib artist) is noise.
    "capture_repr": (),
}

# One thread per example: CI's two cores run the build while nothing else runs,
# and the examples' budgets are sized for it.
os.environ.setdefault("SKAE_DATA", os.path.abspath(os.path.join("..", "..", "shared", "data")))

warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
# The examples stop at small budgets on purpose and each says what a longer
# run gives; scikit-learn's warning that training was still improving would
# only repeat that under every example.
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

warnings.filterwarnings("ignore", category=ConvergenceWarning)
