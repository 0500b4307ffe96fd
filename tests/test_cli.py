"""End-to-end: the real `hierarchy` commands in real processes on the idx fixture."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, hierarchy, in_process, make_image_folder, refused, tiny_overrides

from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.infer.decode import group_matrix

RUN_FILES = {
    "config.yaml",
    "taxonomy.yaml",
    "train.log",
    "metrics.csv",
    "metrics.json",
    "predictions_val.csv",
    "checkpoints",
}


@pytest.mark.slow
def test_coarse_run_folder(coarse_and_fine):
    base = coarse_and_fine
    run = base / "coarse"
    assert RUN_FILES | {"confusion_coarse.png", "confusion_coarse.csv", "reliability_coarse.png"} == {
        p.name for p in run.iterdir()
    }
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,backbone_frozen,train/loss") and len(rows) == 3
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["stage"] == "coarse" and state["epoch"] == 1 and set(state["heads"]) == {"coarse"}
    assert state["taxonomy"]["name"] == "fashion_mnist" and state["config"]["train"]["epochs"] == 2


@pytest.mark.slow
def test_fine_run_transfers_and_freezes(coarse_and_fine):
    base = coarse_and_fine
    coarse = torch.load(base / "coarse" / "checkpoints" / "best.pt", weights_only=True)["model"]
    moved = len(coarse)  # every tensor of the coarse model: the whole backbone and the coarse head's weight and bias
    log = (base / "fine" / "train.log").read_text()  # the run's own account of the transfer
    assert f"transferred {moved} tensors" in log and "new: ['heads.fine.weight', 'heads.fine.bias']" in log
    rows = [r.split(",") for r in (base / "fine" / "metrics.csv").read_text().splitlines()]
    frozen = rows[0].index("backbone_frozen")
    assert [r[frozen] for r in rows[1:]] == ["1", "0"]
    report = json.loads((base / "fine" / "metrics.json").read_text())
    assert set(report["heads"]) == {"coarse", "fine"} and report["split"] == "val"
    assert 0 <= report["hierarchy"]["consistency"] <= 1 and report["heads"]["fine"]["n"] == 40
    assert (base / "fine" / "confusion_fine.png").stat().st_size > 1000


@pytest.mark.slow
def test_eval_on_held_out_test_split(coarse_and_fine, capsys, monkeypatch):
    base = coarse_and_fine
    code, out, _ = in_process(capsys, monkeypatch, "eval", "--model", str(base / "fine"))
    assert code == 0 and "test split, 100 images" in out and "coarse implied by fine" in out
    report = json.loads((base / "fine" / "test" / "metrics.json").read_text())
    fine = report["heads"]["fine"]
    assert fine["n"] == 100 and {"top1", "top5", "macro_f1", "mean_class_accuracy", "per_class"} <= set(fine)
    assert {"implied_coarse_top1", "consistency", "mistake_severity"} <= set(report["hierarchy"])
    assert len((base / "fine" / "test" / "predictions_test.csv").read_text().splitlines()) == 101
    assert fine["top1"] > 0.3  # the patterns are learnable: far above the 0.1 of chance after 2 epochs


@pytest.mark.slow
def test_temperatures_fitted_on_validation_serve_every_command(coarse_and_fine, capsys, monkeypatch, tmp_path):
    base = coarse_and_fine
    fine = base / "fine"
    temperatures = torch.load(fine / "checkpoints" / "best.pt", weights_only=True)["temperatures"]
    assert set(temperatures) == {"coarse", "fine"} and all(0.049 <= t <= 20.1 for t in temperatures.values())
    report = json.loads((fine / "metrics.json").read_text())  # the validation report of the run
    for head in ("coarse", "fine"):
        before, after = report["calibration"][head]["before"], report["calibration"][head]["after"]
        assert after["nll"] <= before["nll"] + 1e-6 and {"ece", "brier"} <= set(after)  # fitted on these
        assert (fine / f"reliability_{head}.png").stat().st_size > 1000
    classifiers = TorchClassifiers.load([str(fine)], torch.device("cpu"))
    probs = classifiers.probabilities([torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)])
    implied = probs["fine"] @ group_matrix(classifiers.taxonomy)  # the calibrated fine distribution's groups …
    assert torch.allclose(implied, probs["coarse"], atol=1e-5)  # … are the calibrated coarse distribution
    code, out, _ = in_process(capsys, monkeypatch, "calibrate", "--model", str(fine), "--out", str(tmp_path / "cal"))
    again = torch.load(fine / "checkpoints" / "best.pt", weights_only=True)["temperatures"]
    assert code == 0 and again == pytest.approx(temperatures, rel=1e-3)  # the same split gives the same fit
    assert "never on the test split" in refused(
        capsys, monkeypatch, "calibrate", "--model", str(fine), "--split", "test"
    )
    code, out, _ = in_process(capsys, monkeypatch, "eval", "--model", str(fine), "--out", str(tmp_path / "ev"),
                              "--min-prob", "0.5")  # fmt: skip
    assert code == 0 and "abstention keeping 95 % of fine labels" in out and "T = " in out
    abstention = json.loads((tmp_path / "ev" / "metrics.json").read_text())["abstention"]
    assert 0.93 <= abstention["at_95_coverage"]["fine_coverage"] <= 0.97
    at = abstention["at_min_prob"]
    assert at["min_prob"] == 0.5 and at["fine_coverage"] * 100 + at["fell_back"] + at["neither"] == pytest.approx(100)
    curve = (tmp_path / "ev" / "coverage.csv").read_text().splitlines()
    assert curve[0].startswith("min_prob,fine_coverage,fine_accuracy_kept") and len(curve) == 52
    assert (tmp_path / "ev" / "coverage.png").stat().st_size > 1000


@pytest.mark.slow
def test_no_validation_trains_on_every_image_and_keeps_the_last_epoch(fmnist_root, tmp_path, capsys, monkeypatch):
    run = tmp_path / "all"
    args = [*tiny_overrides(fmnist_root, 2), "data.val_fraction=0"]
    assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", "--run-dir", str(run), *args)[0] == 0
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["split"] is None and summary["n_train"] == 400 and summary["epochs"] == 2
    assert "--split test" in summary["note"]
    columns = (run / "metrics.csv").read_text().splitlines()[0]
    assert columns == "epoch,lr,backbone_frozen,train/loss,train/images_per_s,time"
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert best["epoch"] == last["epoch"] == 1
    assert all(torch.equal(value, last["model"][key]) for key, value in best["model"].items())
    assert "use --split test" in refused(capsys, monkeypatch, "eval", "--model", str(run), "--split", "val")
    code, out, _ = in_process(capsys, monkeypatch, "eval", "--model", str(run))
    assert code == 0 and "test split, 100 images" in out
    err = refused(capsys, monkeypatch, "run", "--stage", "coarse", "--run-dir", str(tmp_path / "x"),
                  *tiny_overrides(fmnist_root), "data.val_fraction=1")  # fmt: skip
    assert "data.val_fraction=1.0 is out of range: use a value >= 0 and < 1" in err


@pytest.mark.parametrize(
    "source, extra, message",
    [
        ("coarse", ["data.taxonomy=kfashion_style"], "trained on taxonomy 'fashion_mnist'"),
        ("fine", [], "is a 'fine' checkpoint"),
        ("coarse", ["model.backbone=resnet18"], "has model.backbone='resnet10t'"),
        ("coarse", ["model.stem_pool=true"], "has model.stem_pool=False"),
        ("coarse", ["model.channels=[16,32,64,128]"], "has model.channels=[48, 96, 192, 384]"),
    ],
)
def test_fine_from_an_unfitting_checkpoint_is_refused(tiny_runs, fmnist_root, tmp_path, capsys, monkeypatch, source,
                                                      extra, message):  # fmt: skip
    err = refused(
        capsys, monkeypatch, "run", "--stage", "fine", "--run-dir", str(tmp_path / "f"),
        f"init_from={tiny_runs / source}", *extra, *tiny_overrides(fmnist_root),
    )  # fmt: skip
    assert message in err


def test_user_errors_are_one_line(fmnist_root, tmp_path, capsys, monkeypatch):
    proc = hierarchy("run", "train.epohcs=3", "--stage", "coarse", check=False)  # a real process: key=value first
    assert proc.returncode == 2 and "Did you mean: train.epochs" in proc.stderr and "Traceback" not in proc.stderr
    err = refused(capsys, monkeypatch, "run", "--stage", "coarse", f"data.root={tmp_path}", "--run-dir", str(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in err
    assert "no checkpoint at" in refused(capsys, monkeypatch, "eval", "--model", str(tmp_path / "nowhere"))
    assert "not a file written by torch.save" in refused(
        capsys, monkeypatch, "eval", "--model", str(ROOT / "README.md")
    )


SUBCOMMANDS = (
    "run",
    "audit",
    "eval",
    "calibrate",
    "detect",
    "label",
    "export",
    "serve",
    "suggest",
    "retrain",
    "corrections",
)


def test_help_lists_subcommands_and_keys(capsys, monkeypatch):
    listed = re.findall(r"^ {4}(\w+) +\w", hierarchy("--help").stdout, re.M)  # "    run   train a stage …"
    assert listed == list(SUBCOMMANDS)  # each with its one-line help, in this order
    for command in SUBCOMMANDS:
        with pytest.raises(SystemExit) as done:
            in_process(capsys, monkeypatch, command, "--help")
        assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: hierarchy {command} "), command
    with pytest.raises(SystemExit):
        in_process(capsys, monkeypatch, "eval", "--help")
    assert re.search(r"^ +--model ", capsys.readouterr().out, re.M)
    code, keys, _ = in_process(capsys, monkeypatch, "run", "--help-config")
    assert code == 0
    for key in ("data.format", "data.root", "data.limit", "data.image_size", "model.backbone", "model.pretrained",
                "model.weights", "train.epochs", "train.batch_size", "train.lr", "init_from", "resume"):  # fmt: skip
        assert re.search(rf"^ +{re.escape(key)} ", keys, re.M), key  # a line of its own: key, default, meaning


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(fmnist_root, tmp_path, capsys, monkeypatch, caplog):
    """SIGKILL a real training process after its first epoch; resume=auto must end where a clean run ends
    (the weights and their running average both)."""
    args = [*tiny_overrides(fmnist_root, 4), "model.backbone=resnet10t", "train.ema=0.9"]
    clean_run = ("run", "--stage", "coarse", "--run-dir", str(tmp_path / "clean"), *args)
    assert in_process(capsys, monkeypatch, *clean_run)[0] == 0  # in this process: only the killed one needs its own

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hierarchy", "run", "--stage", "coarse", "--run-dir", str(run), *args],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = run / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = torch.load(last, weights_only=True)["epoch"]
    assert done < 3, "the run finished before it could be killed"

    caplog.set_level("INFO")
    resumed_run = ("run", "--stage", "coarse", "--run-dir", str(run), "resume=auto", *args)
    assert in_process(capsys, monkeypatch, *resumed_run)[0] == 0
    assert f"resuming at epoch {done + 2} of 4" in caplog.text
    clean = torch.load(tmp_path / "clean" / "checkpoints" / "last.pt", weights_only=True)
    resumed = torch.load(last, weights_only=True)
    assert resumed["epoch"] == clean["epoch"] == 3
    for key, value in clean["model"].items():
        assert torch.allclose(value.float(), resumed["model"][key].float(), atol=1e-5), key
    assert resumed["ema"]["updates"] == clean["ema"]["updates"]
    for key, value in clean["ema"]["model"].items():
        assert torch.allclose(value.float(), resumed["ema"]["model"][key].float(), atol=1e-5), key
    epochs = [r.split(",")[0] for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]


def test_existing_run_folder_is_never_overwritten(tiny_runs, fmnist_root, capsys, monkeypatch):
    args = ("run", "--stage", "coarse", "--run-dir", str(tiny_runs / "coarse"), *tiny_overrides(fmnist_root))
    assert "resume=auto" in refused(capsys, monkeypatch, *args)


@pytest.mark.slow
def test_folder_run_skips_and_counts_a_corrupt_image(tmp_path, capsys, monkeypatch):
    root = make_image_folder(tmp_path / "imgs", ["Sneaker", "Sandal", "Coat", "Trouser"], per_class=6)
    (root / "Coat" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    run = tmp_path / "run"
    proc = hierarchy(
        "run",
        "--stage",
        "coarse",
        "--run-dir",
        str(run),
        "data.format=folder",
        f"data.root={root}",
        "train.epochs=1",
        "train.batch_size=8",
        "data.val_fraction=0.25",
        "data.workers=1",
    )
    assert proc.stderr.count("skipping unreadable image") == 1 and "truncated.jpg" in proc.stderr
    report = json.loads((run / "metrics.json").read_text())
    assert report["skipped_images"] == 1 and list(report["skipped_files"])[0].endswith("truncated.jpg")
    assert report["heads"]["coarse"]["n"] in (5, 6)  # 6 validation files, one of which may be the corrupt one
    assert "truncated.jpg" not in (run / "predictions_val.csv").read_text()
    code, evaluated, _ = in_process(capsys, monkeypatch, "eval", "--model", str(run), "--split", "val")
    assert code == 0 and "| coarse |" in evaluated and "implied" not in evaluated


@pytest.mark.slow
def test_frozen_backbone_is_the_transferred_one(coarse_and_fine, fmnist_root, tmp_path, capsys, monkeypatch):
    base = coarse_and_fine
    run = tmp_path / "frozen"
    args = ["--run-dir", str(run), f"init_from={base / 'coarse'}", "train.freeze_backbone_epochs=1"]
    assert in_process(capsys, monkeypatch, "run", "--stage", "fine", *args, *tiny_overrides(fmnist_root, 1))[0] == 0
    coarse = torch.load(base / "coarse" / "checkpoints" / "best.pt", weights_only=True)["model"]
    fine = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    backbone = [k for k in coarse if k.startswith("backbone.")]
    assert len(backbone) > 50 and all(torch.equal(coarse[k], fine[k]) for k in backbone)  # incl. BN statistics
    assert not torch.equal(coarse["heads.coarse.weight"], fine["heads.coarse.weight"])  # the heads did train


def test_resume_from_best_pt_is_refused(tiny_runs, fmnist_root, tmp_path, capsys, monkeypatch):
    best = tiny_runs / "coarse" / "checkpoints" / "best.pt"
    err = refused(capsys, monkeypatch, "run", "--stage", "coarse", "--run-dir", str(tmp_path / "r"), f"resume={best}")
    assert "holds no optimizer state" in err


@pytest.mark.slow
def test_torchrun_trains_on_two_processes(fmnist_root, tmp_path):
    """Two CPU processes (gloo) train one model with DistributedDataParallel; rank 0 writes the run folder."""
    run = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "hierarchy", "run",
         "--stage", "coarse", "--run-dir", str(run), *tiny_overrides(fmnist_root, 2), "train.device=cpu"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and len((run / "metrics.csv").read_text().splitlines()) == 3
    assert json.loads((run / "metrics.json").read_text())["heads"]["coarse"]["top1"] > 0.3
    assert (run / "train.log").read_text().count("epoch 2/2") == 1  # one process logs


@pytest.mark.slow
def test_stage_all_chains_labels_and_skips_what_is_current(fmnist_root, tmp_path, capsys, monkeypatch, caplog):
    photos = make_image_folder(tmp_path / "photos", ["a", "b"], 5)
    args = [
        "run",
        "--stage",
        "all",
        "--run-dir",
        str(tmp_path / "job"),
        *tiny_overrides(fmnist_root),
        f"label.input={photos}",
    ]
    assert in_process(capsys, monkeypatch, *args)[0] == 0
    labels = (tmp_path / "job" / "fine" / "labels.csv").read_text().splitlines()
    assert len(labels) == 11 and labels[0].startswith("root,path,sha256,kind")
    assert (tmp_path / "job" / "fine" / "test" / "metrics.json").is_file()
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "job").glob("*/checkpoints/*.pt")}
    assert len(written) == 4  # {coarse, fine} × {last, best}
    caplog.set_level("INFO")
    assert in_process(capsys, monkeypatch, *args)[0] == 0
    assert {p: p.stat().st_mtime_ns for p in written} == written  # both stages finished: neither trained again
    assert "'skipped_done': 10" in caplog.text  # every photo labelled before: none again
    assert len((tmp_path / "job" / "fine" / "labels.csv").read_text().splitlines()) == 11
    err = refused(capsys, monkeypatch, *args, "train.lr=0.01")
    assert "holds a run with other settings (in ['train'])" in err


@pytest.mark.slow
def test_time_budget_ends_each_stage_early_and_a_rerun_knows_it_is_done(fmnist_root, tmp_path, capsys, monkeypatch):
    """A budget far shorter than one epoch: each stage stops after its first epoch, the schedule says so in the
    checkpoint, and running the job again finds both stages finished (their planned epochs, not train.epochs)."""
    args = ["run", "--stage", "all", f"run_dir={tmp_path / 'job'}", *tiny_overrides(fmnist_root, epochs=3)]
    args += ["train.time_budget=0.0001"]  # minutes: 6 ms for the whole job
    code, _, _ = in_process(capsys, monkeypatch, *args)  # the run_dir setting names the job's folder
    assert code == 0
    for stage in ("coarse", "fine"):
        last = torch.load(tmp_path / "job" / stage / "checkpoints" / "last.pt", weights_only=True)
        assert last["epoch"] == 0 and last["epochs"] == 1 and len(last["budget"]["epoch_times"]) == 1
        assert len((tmp_path / "job" / stage / "metrics.csv").read_text().splitlines()) == 2  # header + 1 epoch
    assert (tmp_path / "job" / "fine" / "test" / "metrics.json").is_file()
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "job").glob("*/checkpoints/*.pt")}
    again = [*args[:3], "--run-dir", str(tmp_path / "job"), f"run_dir={tmp_path / 'elsewhere'}", *args[4:]]
    assert in_process(capsys, monkeypatch, *again)[0] == 0  # the flag wins over the setting …
    assert not (tmp_path / "elsewhere").exists() and len(written) == 4
    assert {p: p.stat().st_mtime_ns for p in written} == written  # … and both stages there are finished


@pytest.mark.slow
def test_fine_stage_on_mixed_labels_uses_the_coarse_only_images(coarse_and_fine, fmnist_root, tmp_path, capsys,
                                                                 monkeypatch, caplog):  # fmt: skip
    base = coarse_and_fine
    caplog.set_level("INFO")
    args = ["run", "--stage", "fine", "--run-dir", str(tmp_path / "mixed"), f"init_from={base / 'coarse'}"]
    args += [*tiny_overrides(fmnist_root, 1), "data.fine_label_fraction=0.1", "train.group_pseudo=1.0"]
    code, _, _ = in_process(capsys, monkeypatch, *args, "train.fine_share=0.5")
    assert code == 0
    kept = "data.fine_label_fraction=0.1: 38 of 360 training samples keep their fine label"  # 10 % of each class
    assert kept in caplog.text
    assert "fine stage: 360 training samples" in caplog.text  # the coarse-only ones train too
    assert "have no label for heads" not in caplog.text
    report = json.loads((tmp_path / "mixed" / "metrics.json").read_text())
    assert report["heads"]["fine"]["n"] == 40  # validation keeps and counts every fine label
    caplog.clear()  # a flat model (coarse loss weight 0) trains on the fine-labelled images alone
    flat = ["run", "--stage", "fine", "--run-dir", str(tmp_path / "flat"), "init_from=none", "hierarchy.rule=flat"]
    flat += [*tiny_overrides(fmnist_root, 1), "data.fine_label_fraction=0.1", "train.loss_weights={coarse: 0.0}"]
    assert in_process(capsys, monkeypatch, *flat)[0] == 0
    assert "322 of 360 training samples have no label for heads ['fine']" in caplog.text
