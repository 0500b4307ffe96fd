"""benchmarks/gpu_check.py, the check prepared for a GPU machine, runs end to end on this CPU with --quick."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # a whole benchmark on the CPU: several training runs and labelling arms


def test_gpu_check_runs_quick_on_cpu(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_check_quick.json").read_text())
    job = results["default_job"]
    assert job["coarse_epochs"] == 1 and job["fine_epochs"] == 1 and 0 <= job["fine_top1"] <= 1
    assert len(results["training_speed"]) == 4 and all(r["train_img_s"] > 0 for r in results["training_speed"])
    assert [r["arm"].split()[0] for r in results["labelling"]] == ["hierarchy", "naive", "detector"]
    assert all(r["img_per_s"] > 0 and r["images"] == 8 for r in results["labelling"])
    assert "### Labelling photos" in (tmp_path / "gpu_check_quick.md").read_text()
