"""The layout rules: speechbrain_ext is imported by data_prep and the recipes, never
the reverse, names no recipe, and nothing points at files the project lacks."""

import glob
import os
import re

from conftest import REPO


def _files(*patterns):
    return sorted(p for pattern in patterns
                  for p in glob.glob(os.path.join(REPO, pattern), recursive=True))


def test_speechbrain_ext_neither_imports_data_prep_nor_names_a_recipe():
    for path in _files("speechbrain_ext/**/*.py"):
        text = open(path).read()
        assert not re.search(r"^\s*(>>> )?(from|import) data_prep\b", text, re.M), path
        assert "recipes/" not in text, path


def test_no_file_points_at_files_outside_the_project():
    for path in _files("**/*.py", "**/*.yaml", "**/*.md", "**/*.sh"):
        if os.path.relpath(path, REPO).split(os.sep)[0] in (".venv", "results", "data"):
            continue
        text = open(path).read()
        for outside in ("shared" + "/papers", "DESIGN" + ".md"):  # spelt so as not to match here
            assert outside not in text, (path, outside)
