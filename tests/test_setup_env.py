"""tools/setup_env.sh: pip runs on the first setup and again only when a file that
defines the environment changed (a fake ``.venv`` whose python logs its calls)."""

import os
import shutil
import subprocess

from conftest import REPO

FAKE_PYTHON = '#!/usr/bin/env bash\necho "$*" >> "$(dirname "$0")/../calls.log"\n'
FAKE_ACTIVATE = 'export PATH="$(pwd)/.venv/bin:$PATH"\n'


def _setup(root):
    """Runs the repository's setup_env.sh in ``root``; the pip calls it made."""
    log = root / ".venv" / "calls.log"
    before = log.read_text().splitlines() if log.exists() else []
    subprocess.run(["bash", str(root / "tools" / "setup_env.sh")], check=True,
                   capture_output=True)
    after = log.read_text().splitlines() if log.exists() else []
    return after[len(before):]


def test_pip_runs_again_only_when_the_environment_files_change(tmp_path):
    (tmp_path / "tools").mkdir()
    shutil.copy(os.path.join(REPO, "tools", "setup_env.sh"), tmp_path / "tools")
    for name in ("requirements.txt", "pyproject.toml", "setup.cfg"):
        (tmp_path / name).write_text(f"{name}\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(FAKE_PYTHON)
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "activate").write_text(FAKE_ACTIVATE)

    first = _setup(tmp_path)
    assert first == ["-m pip install --quiet --upgrade pip",
                     "-m pip install --quiet -r requirements.txt",
                     "-m pip install --quiet --no-deps -e ."]
    assert _setup(tmp_path) == []  # nothing changed: no pip
    (tmp_path / "requirements.txt").write_text("requirements.txt\ntorch==2.11.0\n")
    assert _setup(tmp_path) == first
    assert _setup(tmp_path) == []
    assert len(list((tmp_path / ".venv").glob("installed-*"))) == 1  # old stamps removed
