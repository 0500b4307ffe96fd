"""Stage-two techniques, each on and off in one run, with Fashion-MNIST standing in for fashion labels.

Every arm trains the fine model (coarse + fine heads, configs/fine.yaml's network at 32 px, bf16 where the CPU has it)
from scratch through the real CLI and is scored on the 10k test split, never used for training or tuning:

1. class imbalance: a long-tailed training subsample (class k keeps 0.02^(k/9) of its images) — plain,
   ``train.class_weights=true``, ``train.balance=fine``; scored by mean per-class accuracy (the test is balanced)
2. CutMix: a balanced subsample — off vs ``train.cutmix=0.5``
3. AUM: the balanced subsample with 5 % of its labels flipped to another class — trained as is, vs
   ``hierarchy audit`` → ``data.drop_suspects``; also how many injected errors the audit finds
4. UDA: 90 % of the labels hidden (``data.label_fraction=0.1``) — off vs ``train.uda=1``

Usage: python benchmarks/stage_two.py [--quick]   Writes benchmarks/results/stage_two.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import coarse_network, hierarchy_cmd, run_child  # noqa: E402
from hierarchy.data.fashion_mnist import FILES, find_file, read_idx  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

SUBSAMPLE = 12_000  # balanced training subsample (1,200 per class) for the CutMix, AUM and UDA arms
NOISE = 0.05  # share of labels flipped for the AUM arms
COMMON = ["init_from=none", *coarse_network(), "data.image_size=32", "train.batch_size=128"]
GROUPS = ("imbalance", "cutmix", "aum", "uda")


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes (what hierarchy's Fashion-MNIST reader expects)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_variant(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """A Fashion-MNIST folder with this training split and the real 10k test split."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / FILES["train"][0], images)
    write_idx(folder / FILES["train"][1], labels)
    for stem in FILES["test"]:
        shutil.copy(find_file(stem, ""), folder / (stem + ".gz"))
    return folder


def train_and_test(name: str, work: Path, root: Path, epochs: int, extra: list[str]) -> dict:
    run_dir = work / name
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = hierarchy_cmd("run", "--stage", "fine", "--run-dir", str(run_dir), f"data.root={root}", *COMMON,
                        f"train.epochs={epochs}", *extra)  # fmt: skip
    result = run_child(cmd, work / f"{name}.log")
    run_child(hierarchy_cmd("eval", "--model", str(run_dir)), work / f"{name}-eval.log")
    report = json.loads((run_dir / "test" / "metrics.json").read_text())
    fine = report["heads"]["fine"]
    return {
        "fine_top1": fine["top1"],
        "fine_mean_class_acc": fine["mean_class_accuracy"],
        "fine_macro_f1": fine["macro_f1"],
        "group_top1": report["hierarchy"]["implied_coarse_top1"],
        "train_s": result["wall_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script end to end")
    parser.add_argument("--work", default="artifacts/benchmarks/stage_two", help="run folders and data variants")
    parser.add_argument("--groups", nargs="*", default=list(GROUPS), help="rerun only these groups; the others keep "
                        "their figures from the last results file")  # fmt: skip
    args = parser.parse_args()
    work = ROOT / args.work
    work.mkdir(parents=True, exist_ok=True)
    scale = 0.1 if args.quick else 1.0
    epochs = {"imbalance": 10, "cutmix": 12, "aum": 10, "uda": 30, "audit": 4}
    if args.quick:
        epochs = dict.fromkeys(epochs, 1)

    images = read_idx(find_file(FILES["train"][0], "")).numpy()
    labels = read_idx(find_file(FILES["train"][1], "")).numpy()
    rng = np.random.default_rng(0)
    by_class = [rng.permutation(np.flatnonzero(labels == k)) for k in range(10)]
    balanced = np.sort(np.concatenate([idx[: int(SUBSAMPLE * scale / 10)] for idx in by_class]))
    tail_sizes = [max(10, int(6000 * scale * 0.02 ** (k / 9))) for k in range(10)]  # 6000 … 120 per class
    tail = np.sort(np.concatenate([idx[:n] for idx, n in zip(by_class, tail_sizes)]))
    noisy = labels[balanced].copy()
    flipped = rng.choice(len(balanced), int(NOISE * len(balanced)), replace=False)
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, len(flipped))) % 10  # any other class
    roots = {
        "tail": make_variant(work / "data-tail", images[tail], labels[tail]),
        "balanced": make_variant(work / "data-balanced", images[balanced], labels[balanced]),
        "noisy": make_variant(work / "data-noisy", images[balanced], noisy),
    }

    name = "stage_two_quick" if args.quick else "stage_two"
    previous = ROOT / "benchmarks" / "results" / f"{name}.json"
    kept = json.loads(previous.read_text()) if set(args.groups) != set(GROUPS) and previous.exists() else {}
    results = {
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "platform": platform.platform(),
        "torch": torch.__version__,
        "sizes": {"tail": len(tail), "balanced": len(balanced), "flipped": len(flipped)},
        "arms": {k: v for k, v in kept.get("arms", {}).items() if v["group"] not in args.groups},
        "audit": kept.get("audit", {}),
    }

    def arm(group: str, arm_name: str, root: str, extra: list[str]) -> None:
        key = f"{group}: {arm_name}"
        results["arms"][key] = {"group": group, **train_and_test(key.replace(": ", "-"), work, roots[root],
                                                                 epochs[group], extra)}  # fmt: skip
        print(key, results["arms"][key], flush=True)

    if "imbalance" in args.groups:
        arm("imbalance", "plain", "tail", [])
        arm("imbalance", "class_weights", "tail", ["train.class_weights=true"])
        arm("imbalance", "balanced_sampler", "tail", ["train.balance=fine"])
    if "cutmix" in args.groups:
        arm("cutmix", "off", "balanced", [])
        arm("cutmix", "on", "balanced", ["train.cutmix=0.5"])
    if "aum" in args.groups:
        arm("aum", "noisy_labels", "noisy", [])
        results["audit"] = audit(work, roots["noisy"], epochs["audit"], set(flipped.tolist()))
        arm("aum", "drop_suspects", "noisy", [f"data.drop_suspects={work / 'aum-audit'}"])
    if "uda" in args.groups:
        arm("uda", "10pct_labels", "balanced", ["data.label_fraction=0.1"])
        arm("uda", "10pct_labels+uda", "balanced", ["data.label_fraction=0.1", "train.uda=1.0"])
    order = {g: i for i, g in enumerate(GROUPS)}
    results["arms"] = dict(sorted(results["arms"].items(), key=lambda kv: order[kv[1]["group"]]))
    write_results(results, name)


def audit(work: Path, noisy_root: Path, epochs: int, flipped: set[int]) -> dict:
    """``hierarchy audit`` on the noisy labels: how many of the flipped ones it flags, and at what precision."""
    audit_dir = work / "aum-audit"
    shutil.rmtree(audit_dir, ignore_errors=True)
    cmd = hierarchy_cmd("audit", "--stage", "fine", "--run-dir", str(audit_dir), f"data.root={noisy_root}", *COMMON,
                        f"audit.epochs={epochs}")  # fmt: skip
    measured = run_child(cmd, work / "aum-audit.log")

    def indices(name: str) -> set[int]:  # sources are fashion_mnist/train[i], i = position in the noisy file
        with open(audit_dir / name, newline="") as f:
            return {int(r["source"].split("[")[1].rstrip("]")) for r in csv.DictReader(f)}

    suspects, injected = indices("suspect_labels.csv"), flipped & indices("aum.csv")  # training share only
    found = suspects & injected
    result = {
        "injected_in_training_share": len(injected),
        "flagged": len(suspects),
        "injected_found": len(found),
        "recall": round(len(found) / max(1, len(injected)), 4),
        "precision": round(len(found) / max(1, len(suspects)), 4),
        "audit_s": measured["wall_s"],
    }
    print("audit", result, flush=True)
    return result


def write_results(results: dict, name: str) -> None:
    rows = [{"arm": a, **m} for a, m in results["arms"].items()]
    columns = ["arm", "fine_top1", "fine_mean_class_acc", "fine_macro_f1", "group_top1", "train_s"]
    table = format_table(rows, columns)
    deltas = []
    for group in dict.fromkeys(m["group"] for m in results["arms"].values()):
        members = [(a, m) for a, m in results["arms"].items() if m["group"] == group]
        base_name, base = members[0]
        for arm_name, m in members[1:]:
            deltas.append(
                f"- {arm_name} vs {base_name.split(': ')[1]}: fine top-1 {m['fine_top1'] - base['fine_top1']:+.4f}, "
                f"mean class accuracy {m['fine_mean_class_acc'] - base['fine_mean_class_acc']:+.4f}, "
                f"group top-1 {m['group_top1'] - base['group_top1']:+.4f}"
            )
    a = results["audit"]
    text = (
        table
        + "\n\nDeltas against each group's first arm (test split, 10,000 images):\n"
        + "\n".join(deltas)
        + f"\n\nAUM audit ({a['audit_s']} s): {a['flagged']} samples flagged; {a['injected_found']} of the "
        f"{a['injected_in_training_share']} flipped labels in the training share found (recall {a['recall']}, "
        f"precision {a['precision']}).\n"
        f"Sizes: long-tailed set {results['sizes']['tail']} images, balanced set {results['sizes']['balanced']}, "
        f"{results['sizes']['flipped']} labels flipped. Device: {results['device']}.\n"
    )
    print(text)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(
        "# Stage-two techniques on and off (Fashion-MNIST standing in)\n\n"
        f"`python benchmarks/stage_two.py` on {time.strftime('%Y-%m-%d')}\n\n" + text
    )


if __name__ == "__main__":
    main()
