"""Label efficiency: what cheap coarse labels add when fine labels are scarce (Fashion-MNIST standing in).

Every one of the 60,000 training images keeps its coarse (group) label; a seeded share of each fine class keeps
its fine label (``data.fine_label_fraction``). Per share, four arms at equal wall-clock training time:
(a) our two stages: the coarse stage on every image, then the fine stage on the mixed set with the mixed-data
    defaults (``train.fine_share``, ``train.group_pseudo``) — the coarse run is shared and its time counted;
(b) a flat fine-only model on our engine, same network, on the fine-labelled images only (loss weight 0 on the
    coarse head, so the coarse-only images leave its training set);
(c) a plain timm training loop on the fine-labelled images only, one view (as in benchmarks/fashion_mnist.py);
(d) our two stages with the coarse-only images reaching the coarse loss only (both mixed-data settings off).
At 100 % no image lacks its fine label, so (a) and (d) are the same run. Every figure is on the 10,000 test
images, which no choice looks at; (a), (b), (d) use the default job's network and test-time views.

Usage: python benchmarks/label_efficiency.py [--quick]   (--quick: tiny limits to check the script)
Writes benchmarks/results/label_efficiency.{json,md,png}.
"""

from __future__ import annotations

import argparse
import csv
import json
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
from hierarchy.metrics import format_table  # noqa: E402

SHARES = (0.01, 0.05, 0.2, 1.0)
MINUTES = (5.0, 5.0, 6.0, 6.0)  # training minutes per row; short for the small shares, equal across arms
COARSE_MINUTES = 2.5  # the shared coarse run of (a) and (d), counted in every row's time
WITH_COARSE_ONLY = ["train.fine_share=0.5", "train.group_pseudo=1"]  # (a): the mixed-data defaults, spelled out
COARSE_LOSS_ONLY = ["train.fine_share=0", "train.group_pseudo=0"]  # (d)
# (b): from scratch, so the network the two-stage arms take from their coarse run is given explicitly
FLAT = ["init_from=none", *coarse_network(), "hierarchy.rule=flat", "train.loss_weights={coarse: 0.0, fine: 1.0}"]
# Every training image (the settings were chosen on validation before); the time budget alone sets the epochs.
TRAINING_SET = ["data.val_fraction=0", "train.epochs=100000"]
FINDINGS = "## Findings"  # the hand-written section of the .md that every new run keeps
ARM_A, ARM_B = "(a) two stages, coarse-only images used", "(b) flat fine-only, same engine"
ARM_C, ARM_D = "(c) plain timm loop, one view", "(d) two stages, coarse loss only"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and minutes, to check the script end to end")
    parser.add_argument("--work", default="artifacts/benchmarks/label_efficiency", help="run folders")
    parser.add_argument("--shares", type=float, nargs="+", default=SHARES, help="shares of fine labels, one row each")
    parser.add_argument("--minutes", type=float, nargs="+", default=MINUTES, help="training minutes per row")
    args = parser.parse_args()
    if len(args.minutes) != len(args.shares):
        raise SystemExit("--minutes needs one figure per share")
    work = ROOT / args.work / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    quick = ["data.limit=3000"] if args.quick else []
    scale = 0.1 if args.quick else 1.0
    coarse_minutes = COARSE_MINUTES * scale
    results = {
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "cpu": cpu_kind(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "settings": {"with_coarse_only": WITH_COARSE_ONLY, "coarse_loss_only": COARSE_LOSS_ONLY, "flat": FLAT},
        "rows": [],
    }

    coarse_dir = work / "coarse"
    coarse = run_child(hierarchy_cmd("run", "--stage", "coarse", "--run-dir", str(coarse_dir), *TRAINING_SET, *quick,
                                     f"train.time_budget={coarse_minutes}"), work / "coarse.log")  # fmt: skip
    coarse.update(epochs=epochs_run(coarse_dir), train_min=round(train_minutes(coarse_dir), 2))
    results["coarse"] = coarse
    print("coarse", coarse, flush=True)

    for share, minutes in zip(args.shares, args.minutes):
        minutes *= scale
        tag = f"{share:g}"
        data = [*TRAINING_SET, *quick, f"data.fine_label_fraction={share}"]
        fine_minutes = max(minutes - coarse["train_min"], minutes / 10)
        two_stage = [f"init_from={coarse_dir}", f"train.time_budget={fine_minutes:.3f}", *data]
        arms = {}
        arms[ARM_A] = hierarchy_arm(work / f"a-{tag}", work / f"a-{tag}.log", [*two_stage, *WITH_COARSE_ONLY])
        if share < 1:
            arms[ARM_D] = hierarchy_arm(work / f"d-{tag}", work / f"d-{tag}.log", [*two_stage, *COARSE_LOSS_ONLY])
        arms[ARM_B] = hierarchy_arm(
            work / f"b-{tag}", work / f"b-{tag}.log", [*FLAT, f"train.time_budget={minutes:.3f}", *data]
        )
        out = work / f"c-{tag}.json"
        script = work / f"c-{tag}.py"
        script.write_text(plain_timm(minutes * 60 + 30, 3000 if args.quick else 0, 0.0, out, share))
        c = run_child([sys.executable, str(script)], work / f"c-{tag}.log")
        c.update(json.loads(out.read_text()), train_min=minutes)  # its loop fits its epochs to the budget
        arms[ARM_C] = c
        for name in {ARM_A, ARM_D} & set(arms):  # the two-stage arms: the shared coarse run's time is theirs too
            arms[name]["epochs"] = f"{coarse['epochs']}+{arms[name]['epochs']}"
            arms[name]["train_min"] = round(arms[name]["train_min"] + coarse["train_min"], 2)
        if share == 1:
            arms[ARM_D] = {**arms[ARM_A], "same_run_as": "(a)"}
        row = {"share": share, "fine_labels": fine_label_count(share, 3000 if args.quick else 60_000),
               "minutes": minutes, "arms": dict(sorted(arms.items()))}  # fmt: skip
        results["rows"].append(row)
        print(share, {k: v.get("fine_top1") for k, v in row["arms"].items()}, flush=True)
        write_results(results, "label_efficiency_quick" if args.quick else "label_efficiency")


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


def gap(row: dict, better: str, worse: str) -> float:
    return row["arms"][better]["fine_top1"] - row["arms"][worse]["fine_top1"]


def write_results(results: dict, name: str) -> None:
    """Print the table and write benchmarks/results/<name>.json, .md and .png."""
    table_rows = [
        {"fine labels": f"{row['share']:.0%} ({row['fine_labels']:,})", "arm": arm, "fine_top1": m["fine_top1"],
         "group_top1": m["coarse_top1"], "consistency": m.get("consistency"), "epochs": m["epochs"],
         "train_min": m.get("train_min")}
        for row in results["rows"] for arm, m in row["arms"].items()
    ]  # fmt: skip
    table = format_table(table_rows, ["fine labels", "arm", "fine_top1", "group_top1", "consistency", "epochs",
                                      "train_min"])  # fmt: skip
    lines = [f"- {row['share']:.0%}: (a) − (d) {gap(row, ARM_A, ARM_D):+.4f}, (a) − (b) {gap(row, ARM_A, ARM_B):+.4f}"
             for row in results["rows"]]  # fmt: skip
    coarse = results["coarse"]
    summary = (
        f"\n\nDevice: {results['device']}, {results['cpu']}. The coarse run shared by (a) and (d): "
        f"{coarse['epochs']} epochs, {coarse['train_min']} training minutes, counted in their train_min. "
        "group_top1 is the group of the fine prediction; (b) trains no coarse head, so its consistency means "
        "nothing; (c) has no coarse head. Gaps in fine top-1:\n" + "\n".join(lines)
    )
    print(table + summary)
    title = "Label efficiency: cheap coarse labels for scarce fine ones (Fashion-MNIST)"
    out = save_results(name, title, results, table + summary, FINDINGS)
    plot(results, out / f"{name}.png")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    shares = [row["share"] * 100 for row in results["rows"]]
    for arm in results["rows"][0]["arms"]:
        ax.plot(shares, [row["arms"][arm]["fine_top1"] for row in results["rows"]], marker="o", label=arm)
    ax.set_xscale("log")
    ax.set_xticks(shares, [f"{s:g} %" for s in shares])
    ax.minorticks_off()
    ax.set_xlabel("training images with a fine label (every one has its coarse label)")
    ax.set_ylabel("fine top-1 on the 10,000 test images")
    ax.set_title("Fashion-MNIST: fine accuracy against the share of fine labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
