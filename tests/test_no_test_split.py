"""Data without a test split: the default job and `hierarchy eval` report on what was held out and exit 0."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

import pytest
from conftest import hierarchy as run_hierarchy
from conftest import make_image_folder

pytestmark = pytest.mark.slow  # two small jobs and four evaluations as real processes: ~1 min on 2 cores
hierarchy = partial(run_hierarchy, check=False, threads=1)


def own_photos_job(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """The README's own-photos path on `photos/<label>/*.png` with no test/ folder, tiny; (process, photos, fine)."""
    photos = make_image_folder(tmp_path / "photos", ["tshirt_top", "Trouser", "Bag"], per_class=8)
    settings = ["data.format=folder", f"data.root={photos}", "data.crop=image", "data.image_size=32",
                "train.epochs=1", "train.batch_size=16", "data.workers=0", *extra]  # fmt: skip
    job = hierarchy("run", "--stage", "all", "--run-dir", str(tmp_path / "job"), *settings)
    return job, photos, tmp_path / "job" / "fine"


def test_job_and_eval_report_on_validation(tmp_path):
    job, photos, fine = own_photos_job(tmp_path, "data.val_fraction=0.25")
    assert job.returncode == 0, job.stderr
    report = json.loads((fine / "metrics.json").read_text())  # the run's own validation report is the job's
    assert report["split"] == "val" and report["n_images"] == 6  # a quarter of the 24 photos
    assert {"predictions_val.csv", "confusion_fine.png", "confusion_coarse.png"} <= {p.name for p in fine.iterdir()}
    assert not (fine / "test").exists()
    last = job.stderr.strip().splitlines()[-1]  # the job's last word says what was measured and how to add a test
    assert "No test split was given" in last and f"{photos}/test/<label>/" in last

    evaluation = hierarchy("eval", "--model", str(fine))
    assert evaluation.returncode == 0, evaluation.stderr
    written = json.loads((fine / "val" / "metrics.json").read_text())
    assert written["split"] == "val" and written["n_images"] == 6
    assert written["heads"]["fine"]["top1"] == report["heads"]["fine"]["top1"]  # the same photos, the same model
    assert "val split, 6 images" in evaluation.stdout and "No test split was given" in evaluation.stdout

    asked = hierarchy("eval", "--model", str(fine), "--split", "test")  # named explicitly: no stand-in for it
    assert asked.returncode == 2 and f"{photos} has no test split" in asked.stderr and "Traceback" not in asked.stderr


def test_nothing_held_out_is_said_not_crashed(tmp_path):
    job, photos, fine = own_photos_job(tmp_path, "data.val_fraction=0")
    assert job.returncode == 0, job.stderr
    assert json.loads((fine / "metrics.json").read_text())["split"] is None  # the training summary
    assert not (fine / "test").exists() and not (fine / "val").exists()
    last = job.stderr.strip().splitlines()[-1]
    assert "nothing else was held out" in last and f"{photos}/test/<label>/" in last

    evaluation = hierarchy("eval", "--model", str(fine))
    assert evaluation.returncode == 0, evaluation.stderr
    assert "nothing else was held out" in evaluation.stdout and "report files" not in evaluation.stdout
    assert not (fine / "val").exists() and not (fine / "test").exists()
