"""The project as a user installs it: a wheel (not editable) in a fresh virtual environment, run from an
empty folder, so nothing can be found by walking up from the checkout.

The heavy dependencies (torch, timm, …) come from this checkout's environment through a ``.pth`` file: a path
line there is only appended to ``sys.path``; the ``.pth`` files inside that folder (the editable install's
import hook among them) are not run, which the test checks before installing the wheel.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from hierarchy.config import Config

pytestmark = pytest.mark.slow  # builds a wheel and installs it into a fresh virtual environment

ROOT = Path(__file__).resolve().parent.parent
# Build outputs and environments stay out of the copy the wheel is built from.
NOT_SOURCE = (".venv", ".git", "artifacts", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def help_lines() -> dict[str, str]:
    """Dotted key -> that field's own help text, read from this checkout's dataclasses."""
    found = {}

    def walk(obj: object, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                found[prefix + f.name] = f.metadata["help"]

    walk(Config(), "")
    return found


def test_wheel_installs_and_runs_from_an_empty_folder(tmp_path):
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    # Build from a copy, so the build leaves no build/ or egg-info behind in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, source],
        tmp_path, pip_env)  # fmt: skip
    (wheel,) = wheels.glob("hierarchy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for d in ("hierarchy", "stages") for p in (ROOT / d).rglob("*.py")}
    shipped |= {"hierarchy/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    shipped |= {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "hierarchy" / "serve" / "static").rglob("*") if p.is_file()
    }
    assert "hierarchy/serve/static/vendor/cropper.min.js" in shipped  # the web app's pages and vendored JS
    assert "hierarchy/configs/detector.yaml" in shipped and "hierarchy/configs/taxonomy/fashion_mnist.yaml" in shipped
    assert shipped <= names, f"missing from the wheel (add the package in pyproject.toml): {sorted(shipped - names)}"

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    python, site = venv / "bin" / "python", Path(sysconfig.get_path("purelib", vars={"base": venv}))
    # Install before the dependencies are visible, so pip sees no other hierarchy (the editable one) to replace.
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], tmp_path, pip_env)
    assert (site / "hierarchy" / "configs" / "detector.yaml").is_file()
    (site / "checkout_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    where = run([python, "-c", "import sys, hierarchy, hierarchy.config as c, torch; print(hierarchy.__file__); "
                 "print(c.config_dir()); print(sorted(m for m in sys.modules if 'editable' in m)); "
                 "print(torch.get_num_threads())"], empty, env).split("\n")  # fmt: skip
    assert Path(where[0]).is_relative_to(site) and Path(where[1]) == site / "hierarchy" / "configs", where
    assert where[2] == "[]" and where[3] == "1", where  # the checkout's editable hook did not run; one thread

    hierarchy = str(venv / "bin" / "hierarchy")
    listing = {line.split()[0]: line for line in run([hierarchy, "run", "--help-config"], empty, env).splitlines()
               if line.startswith("  ")}  # fmt: skip
    for key, text in help_lines().items():
        assert text in listing[key], key

    run([hierarchy, "run", "--stage", "coarse", "data.limit=256", "train.epochs=1", "train.batch_size=64"], empty, env)
    (run_dir,) = (empty / "artifacts" / "coarse").iterdir()
    assert (run_dir / "checkpoints" / "best.pt").is_file() and (run_dir / "metrics.json").is_file()
    assert sorted(p.name for p in empty.iterdir()) == ["artifacts"]
