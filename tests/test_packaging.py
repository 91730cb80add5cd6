"""The configs ship inside the package, so a plain (non-editable) install works."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from genre_tagger.config import CONFIG_DIR, load_config, resolve_config_path

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_is_inside_the_package_and_reachable_as_configs_path(tmp_path, monkeypatch):
    assert CONFIG_DIR.parent == ROOT / "genre_tagger"
    monkeypatch.chdir(tmp_path)  # far from the repository: names must not depend on the cwd
    for spelled in ("configs/model/fusion_mean.yaml", "model/fusion_mean.yaml", "model/fusion_mean"):
        assert resolve_config_path(spelled) == CONFIG_DIR / "model" / "fusion_mean.yaml"
    assert load_config(["configs/model/fusion_gated.yaml"])["model"]["fusion"]["class_path"].endswith("GatedFusion")


def test_wheel_carries_the_configs(tmp_path):
    # built from a clean copy: an in-tree build/ folder would hide a missing package-data rule
    source = tmp_path / "source"
    shutil.copytree(ROOT / "genre_tagger", source / "genre_tagger", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    except subprocess.CalledProcessError as err:
        pytest.fail(err.stderr.decode()[-2000:])
    wheel = next(tmp_path.glob("genre_tagger-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"genre_tagger/configs/{p.relative_to(CONFIG_DIR).as_posix()}" for p in CONFIG_DIR.rglob("*.yaml")}
    assert "genre_tagger/configs/default.yaml" in shipped
    assert shipped <= names, sorted(shipped - names)
