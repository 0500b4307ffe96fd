"""Label efficiency: what cheap coarse labels add when fine labels are scarce (Fashion-MNIST standing in).

Every one of the 60,000 training images keeps its coarse (group) label; a seeded share of each fine class keeps
its fine label (``data.fine_label_fraction``). Arms:
(a) our two stages with the defaults: the coarse stage on every image, then the fine stage on the mixed set
    (``train.fine_share``, ``train.group_pseudo``; ``train.fixmatch`` stays off, having lost on validation) —
    the coarse run is shared by the budget's rows and its time counted in each;
(b) a flat fine-only model on our engine, same network, on the fine-labelled images only (loss weight 0 on the
    coarse head, so the coarse-only images leave its training set);
(c) a plain timm training loop on the fine-labelled images only, one view (as in benchmarks/fashion_mnist.py);
(d) our two stages with the coarse-only images reaching the coarse loss only (the mixed-data settings off).
Two budgets for (a) and (b), so a difference is the method's and not the clock's:
- ``time``: 15 training minutes per row (the README job's budget), the coarse stage given the job's share;
- ``epochs``: the same number of passes over 60,000 draws: (a) 2 coarse + 8 fine epochs, (b) 10 such passes
  over its fine-labelled images (at 1 %, 1,000 epochs of 600), no clock.
(c) and (d) keep the short time rows (5–6 minutes, ``short``). At 100 % no image lacks its fine label, so (d) is
(a). Every figure is on the 10,000 test images, which no choice looks at; (a), (b), (d) use the default job's
network and test-time views. Each row keeps the CPU it ran on.

Usage: python benchmarks/label_efficiency.py [--fractions 0.01 0.2] [--budgets time epochs short] [--quick]
A run replaces the rows of its fractions and budgets in benchmarks/results/label_efficiency.{json,md,png} and
keeps the others, so the fractions can be run one at a time.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import (  # noqa: E402
    coarse_network,
    hierarchy_cmd,
    plain_timm,
    run_child,
    save_results,
    test_metrics,
)
from hierarchy.config import load_config  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

FRACTIONS = (0.01, 0.05, 0.2, 1.0)
JOB_MINUTES = 15.0  # the README job's training budget
SHORT_MINUTES = {0.01: 5.0, 0.05: 5.0, 0.2: 6.0, 1.0: 6.0}  # (c), (d) and the earlier rows
SHORT_COARSE_MINUTES = 2.5
EQUAL_EPOCHS = (2, 8)  # (a)'s coarse and fine epochs at the epochs budget; (b) gets their sum in 60,000-draw passes
DEFAULTS = ["train.fine_share=0.5", "train.group_pseudo=1", "train.fixmatch=0"]  # (a): the defaults, spelled out
COARSE_LOSS_ONLY = ["train.fine_share=0", "train.group_pseudo=0", "train.fixmatch=0"]  # (d)
# (b): from scratch, so the network the two-stage arms take from their coarse run is given explicitly
FLAT = ["init_from=none", *coarse_network(), "hierarchy.rule=flat", "train.loss_weights={coarse: 0.0, fine: 1.0}"]
TRAINING_SET = ["data.val_fraction=0"]  # every training image (the settings were chosen on validation before)
UNCAPPED = ["train.epochs=100000"]  # the time budget alone sets the epochs
FINDINGS = "## Findings"  # the hand-written section of the .md that every new run keeps
ARM_A, ARM_B = "(a) two stages, coarse-only images used", "(b) flat fine-only, same engine"
ARM_C, ARM_D = "(c) plain timm loop, one view", "(d) two stages, coarse loss only"
TRAIN_IMAGES = 60_000
BUDGETS = ("time", "epochs", "short")


def epochs_run(run_dir: Path) -> int:
    with open(run_dir / "metrics.csv", newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def train_minutes(run_dir: Path) -> float:
    """Training time as ``train.time_budget`` counts it: the epochs' own times, from metrics.csv."""
    with open(run_dir / "metrics.csv", newline="") as f:
        return sum(float(row["time"]) for row in csv.DictReader(f)) / 60


def hierarchy_arm(run_dir: Path, log: Path, settings: list[str]) -> dict:
    """Train a fine-stage run, evaluate it on the test split, return its figures."""
    trained = run_child(hierarchy_cmd("run", "--stage", "fine", "--run-dir", str(run_dir), *settings), log)
    evaluated = run_child(hierarchy_cmd("eval", "--model", str(run_dir)), log.with_suffix(".eval.log"))
    return {**test_metrics(run_dir), "epochs": epochs_run(run_dir), "train_min": round(train_minutes(run_dir), 2),
            "wall_s": trained["wall_s"], "eval_s": evaluated["wall_s"],
            "peak_rss_mb": trained["peak_rss_mb"]}  # fmt: skip


def coarse_run(run_dir: Path, settings: list[str]) -> dict:
    coarse = run_child(hierarchy_cmd("run", "--stage", "coarse", "--run-dir", str(run_dir), *settings),
                       run_dir.with_suffix(".log"))  # fmt: skip
    return {**coarse, "epochs": epochs_run(run_dir), "train_min": round(train_minutes(run_dir), 2)}


def with_coarse(arm: dict, coarse: dict) -> dict:
    """A two-stage arm's figures with the shared coarse run's epochs and minutes counted in."""
    return {**arm, "epochs": f"{coarse['epochs']}+{arm['epochs']}",
            "train_min": round(arm["train_min"] + coarse["train_min"], 2)}  # fmt: skip


def job_coarse_share() -> float:
    """The share of a time budget the default job gives its coarse stage (stages/pipeline.py: by epochs)."""
    coarse, fine = load_config("coarse").train.epochs, load_config("fine").train.epochs
    return coarse / (coarse + fine)


def budget_rows(budget: str, share: float, work: Path, quick: list[str], scale: float, coarse: dict) -> dict:
    """The arms of one (fraction, budget) row."""
    tag = f"{budget}-{share:g}"
    data = [*TRAINING_SET, *quick, f"data.fine_label_fraction={share}"]
    init = f"init_from={coarse['dir']}"
    arms = {}
    if budget == "epochs":
        fine_epochs = EQUAL_EPOCHS[1]
        arms[ARM_A] = hierarchy_arm(work / f"a-{tag}", work / f"a-{tag}.log",
                                    [init, f"train.epochs={fine_epochs}", *data, *DEFAULTS])  # fmt: skip
        flat_epochs = math.ceil(sum(EQUAL_EPOCHS) / share)  # equal draws: passes over 60,000 images
        arms[ARM_B] = hierarchy_arm(work / f"b-{tag}", work / f"b-{tag}.log",
                                    [*FLAT, f"train.epochs={flat_epochs}", *data])  # fmt: skip
        minutes = None
    else:
        minutes = (JOB_MINUTES if budget == "time" else SHORT_MINUTES[share]) * scale
        fine_minutes = max(minutes - coarse["train_min"], minutes / 10)
        two_stage = [init, f"train.time_budget={fine_minutes:.3f}", *UNCAPPED, *data]
        if budget == "time":
            arms[ARM_A] = hierarchy_arm(work / f"a-{tag}", work / f"a-{tag}.log", [*two_stage, *DEFAULTS])
            flat = [*FLAT, f"train.time_budget={minutes:.3f}", *UNCAPPED, *data]
            arms[ARM_B] = hierarchy_arm(work / f"b-{tag}", work / f"b-{tag}.log", flat)
        else:  # short: the earlier comparison's (c) and (d)
            if share < 1:
                arms[ARM_D] = hierarchy_arm(work / f"d-{tag}", work / f"d-{tag}.log", [*two_stage, *COARSE_LOSS_ONLY])
            out, script = work / f"c-{tag}.json", work / f"c-{tag}.py"
            script.write_text(plain_timm(minutes * 60 + 30, 3000 if quick else 0, 0.0, out, share))
            c = run_child([sys.executable, str(script)], work / f"c-{tag}.log")
            arms[ARM_C] = {**c, **json.loads(out.read_text()), "train_min": minutes}  # its loop fits its epochs
    for name in {ARM_A, ARM_D} & set(arms):
        arms[name] = with_coarse(arms[name], coarse)
    return {"share": share, "budget": budget, "minutes": minutes, "cpu": cpu_kind(),
            "fine_labels": fine_label_count(share, 3000 if quick else TRAIN_IMAGES), "coarse": coarse,
            "date": time.strftime("%Y-%m-%d"), "arms": dict(sorted(arms.items()))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and minutes, to check the script end to end")
    parser.add_argument("--work", default="artifacts/benchmarks/label_efficiency", help="run folders")
    parser.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS, help="shares of fine labels")
    parser.add_argument("--budgets", nargs="+", default=list(BUDGETS), choices=BUDGETS)
    args = parser.parse_args()
    work = ROOT / args.work / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    quick = ["data.limit=3000"] if args.quick else []
    scale = 0.1 if args.quick else 1.0
    name = "label_efficiency_quick" if args.quick else "label_efficiency"
    results = earlier_results(name)
    results.update(device="cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
                   settings={"defaults": DEFAULTS, "coarse_loss_only": COARSE_LOSS_ONLY, "flat": FLAT,
                             "equal_epochs": EQUAL_EPOCHS})  # fmt: skip
    coarse_settings = {
        "time": [f"train.time_budget={JOB_MINUTES * job_coarse_share() * scale:.3f}", *UNCAPPED],
        "epochs": [f"train.epochs={EQUAL_EPOCHS[0]}"],
        "short": [f"train.time_budget={SHORT_COARSE_MINUTES * scale:.3f}", *UNCAPPED],
    }
    for budget in args.budgets:
        coarse_dir = work / f"coarse-{budget}"  # one coarse run per budget, shared by its fractions
        coarse = {**coarse_run(coarse_dir, [*TRAINING_SET, *quick, *coarse_settings[budget]]), "dir": str(coarse_dir)}
        print("coarse", budget, coarse, flush=True)
        for share in args.fractions:
            row = budget_rows(budget, share, work, quick, scale, coarse)
            kept = [r for r in results["rows"] if (r["share"], r["budget"]) != (share, budget)]
            results["rows"] = sorted([*kept, row], key=lambda r: (r["share"], BUDGETS.index(r["budget"])))
            print(share, budget, {k: v.get("fine_top1") for k, v in row["arms"].items()}, flush=True)
            write_results(results, name)


def earlier_results(name: str) -> dict:
    """The rows an earlier run wrote (rows from before the budgets were named are the short ones)."""
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    results = json.loads(path.read_text()) if path.exists() else {"rows": []}
    for row in results["rows"]:
        row.setdefault("budget", "short")
        row.setdefault("cpu", results.get("cpu", "?"))
    return results


def fine_label_count(share: float, images: int) -> int:
    """About how many fine labels a share keeps (per class, rounded, at least one; shown in the table)."""
    return max(10, round(share * images)) if share < 1 else images


def cpu_kind() -> str:
    """The CPU model and whether it computes bf16 natively (timings differ about 2x between the kinds)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")), "?")
    native = any(flag in text for flag in ("avx512_bf16", "amx_tile"))
    if native and os.environ.get("HIERARCHY_FP32_EMULATED"):
        return f"{model}, fp32 emulated (native bf16 turned off by benchmarks/fp32_site)"
    return f"{model}, {'native bf16' if native else 'no native bf16 (fp32)'}"


def gap(row: dict, better: str, worse: str) -> str:
    arms = row["arms"]
    if better not in arms or worse not in arms:
        return "–"
    return f"{arms[better]['fine_top1'] - arms[worse]['fine_top1']:+.4f}"


def short_cpu(cpu: str) -> str:
    return cpu.split(",")[0]


def write_results(results: dict, name: str) -> None:
    """Print the table and write benchmarks/results/<name>.json, .md and .png."""
    table_rows = [
        {"fine labels": f"{row['share']:.0%} ({row['fine_labels']:,})", "budget": row["budget"], "arm": arm,
         "fine_top1": m["fine_top1"], "group_top1": m["coarse_top1"], "consistency": m.get("consistency"),
         "epochs": m["epochs"], "train_min": m.get("train_min"), "date": row.get("date", "2026-11-30"),
         "cpu": short_cpu(row["cpu"])}
        for row in results["rows"] for arm, m in row["arms"].items()
    ]  # fmt: skip
    columns = ["fine labels", "budget", "arm", "fine_top1", "group_top1", "consistency", "epochs", "train_min",
               "date", "cpu"]  # fmt: skip
    table = format_table(table_rows, columns)
    lines = [f"- {row['share']:.0%}, {row['budget']}: (a) − (b) {gap(row, ARM_A, ARM_B)}, "
             f"(a) − (d) {gap(row, ARM_A, ARM_D)}" for row in results["rows"]]  # fmt: skip
    cpus = "; ".join(sorted({row["cpu"] for row in results["rows"]}))
    summary = (
        f"\n\nDevice: {results['device']}; CPUs: {cpus}. Budgets: time = {JOB_MINUTES:g} training minutes per row "
        f"(the coarse run's share counted in the two-stage arms' train_min); epochs = {EQUAL_EPOCHS[0]} coarse + "
        f"{EQUAL_EPOCHS[1]} fine epochs for (a), the same number of 60,000-image passes for (b); short = 5–6 "
        "training minutes per row. group_top1 is the group of the fine "
        "prediction; (b) trains no coarse head, so its consistency means nothing; (c) has no coarse head. Gaps in "
        "fine top-1:\n" + "\n".join(lines)
    )
    print(table + summary)
    title = "Label efficiency: cheap coarse labels for scarce fine ones (Fashion-MNIST)"
    out = save_results(name, title, results, table + summary, FINDINGS)
    plot(results, out / f"{name}.png")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in results["rows"]:
        for arm, m in row["arms"].items():
            series.setdefault(f"{arm[:3]} {row['budget']}", []).append((row["share"] * 100, m["fine_top1"]))
    styles = {"time": "-", "epochs": "--", "short": ":"}  # one line style per budget, one colour per arm
    colours = {"(a)": "tab:orange", "(b)": "tab:blue", "(c)": "tab:grey", "(d)": "tab:green"}
    for label, points in sorted(series.items()):
        points.sort()
        arm, budget = label.split()
        ax.plot(*zip(*points), styles[budget], color=colours[arm], marker="o", label=label)
    shares = sorted({row["share"] * 100 for row in results["rows"]})
    ax.set_xscale("log")
    ax.set_xticks(shares, [f"{s:g} %" for s in shares])
    ax.minorticks_off()
    ax.set_xlabel("training images with a fine label (every one has its coarse label)")
    ax.set_ylabel("fine top-1 on the 10,000 test images")
    ax.set_title("Fashion-MNIST: fine accuracy against the share of fine labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
