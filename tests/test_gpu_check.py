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
    assert job["coarse_epochs"] == 1 and job["fine_epochs"] == 1
    for key in ("fine_top1", "coarse_top1", "coarse_head_top1", "consistency"):  # counted on the 200 test images
        assert job[key] * 200 == pytest.approx(round(job[key] * 200), abs=1e-6), key
    speed = results["training_speed"]
    arms = {(r["amp_bf16"], r["channels_last"]) for r in speed}
    assert arms == {(amp, layout) for amp in (True, False) for layout in (True, False)}
    assert all(r["train_img_s"] > 0 for r in speed)
    assert [r["arm"].split()[0] for r in results["labelling"]] == ["hierarchy", "naive", "detector"]
    for arm in results["labelling"]:  # the loop's own time, inside its process's wall time; the rate from both
        assert arm["images"] == 8 and 0 < arm["loop_s"] < arm["wall_s"], arm
        assert arm["img_per_s"] == pytest.approx(8 / arm["loop_s"], rel=0.05), arm  # both rounded
    report = (tmp_path / "gpu_check_quick.md").read_text()
    table = report.split("### Default job")[1].split("\n|")  # the heading, then "| name | … |", "|---|…", the row
    header, row = ([cell.strip() for cell in line.split("|")[1:-1]] for line in ("|" + table[1], "|" + table[3]))
    for name, cell in zip(header, row):  # the report shows the figures of the JSON
        value = job[name]
        assert cell == "None" if value is None else float(cell) == pytest.approx(value, abs=5e-5), (name, cell)
    assert "### Labelling photos" in report
