"""Fashion-MNIST benchmark: hierarchy (coarse → fine) vs a flat fine-only model vs a plain timm loop.

All three are measured in one run on the held-out 10k test split (never used for training or tuning):
(a) ``hierarchy run --stage all data.val_fraction=0`` — the README's default job;
(b) the same engine, fine head only, trained from scratch for the same total number of epochs;
(c) a plain timm training loop (per-image torchvision transforms, AdamW, cosine) given the wall-clock
    time that (a) took.
All three train on the same images: with ``data.val_fraction=0`` every one of the 60,000 training images.

Usage: python benchmarks/fashion_mnist.py [--quick]   (--quick: tiny limits to check the script)
Writes benchmarks/results/fashion_mnist.json and fashion_mnist.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hierarchy.checkpoint import load_checkpoint  # noqa: E402  (after the sys.path line)
from hierarchy.config import load_config  # noqa: E402
from hierarchy.evaluate import model_latency  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402


def run_child(cmd: list[str], log_path: Path) -> dict:
    """Run a command, returning its wall time and its own peak RSS (from wait4, not the machine's)."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log_path}")
    return {"wall_s": round(time.perf_counter() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


DEFAULT_JOB = ["data.val_fraction=0"]  # the README's first command: the chosen recipe on every training image


def coarse_network() -> list[str]:
    """configs/coarse.yaml's network as settings, for a fine run with ``init_from=none``: with no coarse checkpoint
    to take the network from, a flat arm is given the two-stage arms' network explicitly."""
    model = load_config("coarse").model
    channels = ",".join(str(c) for c in model.channels)
    return [f"model.backbone={model.backbone}", f"model.stem_pool={str(model.stem_pool).lower()}",
            f"model.channels=[{channels}]"]  # fmt: skip


def hierarchy_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hierarchy", *args]


def test_metrics(run_dir: Path) -> dict:
    report = json.loads((run_dir / "test" / "metrics.json").read_text())
    fine = report["heads"]["fine"]
    return {
        "fine_top1": fine["top1"],
        "coarse_top1": report["hierarchy"]["implied_coarse_top1"],
        "coarse_head_top1": report["heads"]["coarse"]["top1"],
        "consistency": report["hierarchy"]["consistency"],
        "fine_macro_f1": fine["macro_f1"],
        # one image, all its test-time views
        "cpu_latency_ms": model_latency(load_checkpoint(run_dir))["cpu_latency_ms"],
    }


def plain_timm(budget_s: float, limit: int, val_fraction: float, out: Path, fine_fraction: float = 1.0) -> str:
    """(c) A plain loop the way most training scripts write it: per-image transforms, no hierarchy; it leaves out
    the same validation share as (a), and uses no validation either. With ``fine_fraction`` < 1 it trains on the
    same fine-labelled images as ``data.fine_label_fraction`` keeps (seed 0)."""
    code = f"""
import json, math, time, torch, timm, torch.nn.functional as F
from torchvision import transforms
from PIL import Image
from hierarchy.data import fashion_mnist
from hierarchy.data.images import fine_labels_to_hide
from hierarchy.taxonomy import load_taxonomy
tax = load_taxonomy("fashion_mnist")
train, test = fashion_mnist.load("", "train", tax, 28), fashion_mnist.load("", "test", tax, 28)
limit = {limit} or len(train.images)
n_val = round(limit * {val_fraction})
order = torch.randperm(limit, generator=torch.Generator().manual_seed(0))
tr_idx = order[n_val:].sort().values
if {fine_fraction} < 1:  # as build_splits does with seed 0: the same fine-labelled images
    tr_idx = tr_idx[~fine_labels_to_hide(train.fine[tr_idx], {fine_fraction}, 2)]
aug = transforms.Compose([transforms.Resize(32), transforms.RandomCrop(32, padding=3),
                          transforms.RandomHorizontalFlip(),
                          transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
plain = transforms.Compose([transforms.Resize(32), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
class DS(torch.utils.data.Dataset):
    def __init__(s, imgs, labels, tf): s.imgs, s.labels, s.tf = imgs, labels, tf
    def __len__(s): return len(s.imgs)
    def __getitem__(s, i): return s.tf(Image.fromarray(s.imgs[i, 0].numpy())), int(s.labels[i])
dl = torch.utils.data.DataLoader(DS(train.images[tr_idx], train.fine[tr_idx], aug), batch_size=128, shuffle=True,
                                 num_workers=2, persistent_workers=True)
model = timm.create_model("resnet10t", pretrained=False, num_classes=10, in_chans=1)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
start = time.time()
def one_epoch(max_steps=None):
    model.train()
    step = 0
    for step, (x, y) in enumerate(dl, 1):
        loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        if max_steps and step >= max_steps: break
    return step
# Measure the pace on 60 steps (several epochs of a small set), then fit as many epochs as the budget allows.
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
t, steps = time.time(), 0
while steps < 60: steps += one_epoch(60 - steps)
per_step = (time.time() - t) / steps
epochs = max(1, int(({budget_s} - (time.time() - start) - 30) / (per_step * len(dl))))
model = timm.create_model("resnet10t", pretrained=False, num_classes=10, in_chans=1)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
total = epochs * len(dl)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total, pct_start=0.1)
for e in range(epochs): one_epoch()
model.eval()
with torch.no_grad():
    pred = torch.cat([model(torch.stack([plain(Image.fromarray(a[0].numpy())) for a in test.images[i:i+500]])).argmax(1)
                      for i in range(0, len(test.images), 500)])
parents = torch.tensor(tax.parents)
json.dump({{"epochs": epochs, "fine_top1": (pred == test.fine).float().mean().item(),
           "coarse_top1": (parents[pred] == test.coarse).float().mean().item()}}, open("{out}", "w"))
"""
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data limits, to check the script end to end")
    parser.add_argument("--work", default="artifacts/benchmarks/fashion_mnist", help="run folders")
    args = parser.parse_args()
    work = ROOT / args.work
    work.mkdir(parents=True, exist_ok=True)
    quick = ["data.limit=3000", "train.epochs=1"] if args.quick else []
    results = {
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "platform": platform.platform(),
        "torch": torch.__version__,
        "arms": {},
    }

    # (a) the README's default job
    tag = time.strftime("%Y%m%d-%H%M%S")
    a_dir = work / f"hierarchy-{tag}"
    a_cmd = hierarchy_cmd("run", "--stage", "all", "--run-dir", str(a_dir), *DEFAULT_JOB, *quick)
    a = run_child(a_cmd, work / f"a-{tag}.log")
    a.update(test_metrics(a_dir / "fine"))
    fine_config = yaml.safe_load((a_dir / "fine" / "config.yaml").read_text())
    coarse_epochs = yaml.safe_load((a_dir / "coarse" / "config.yaml").read_text())["train"]["epochs"]
    fine_epochs = fine_config["train"]["epochs"]
    a["epochs"] = f"{coarse_epochs}+{fine_epochs}"
    results["arms"]["(a) hierarchy coarse→fine"] = a
    print("(a)", a, flush=True)

    # (b) flat fine-only, same engine, same total epochs
    b_dir = work / f"flat-{tag}"
    total_epochs = 1 if args.quick else coarse_epochs + fine_epochs
    b = run_child(
        hierarchy_cmd(
            "run",
            "--stage",
            "fine",
            "--run-dir",
            str(b_dir),
            "init_from=none",
            *coarse_network(),
            "hierarchy.rule=flat",
            "train.loss_weights={coarse: 0.0, fine: 1.0}",
            *DEFAULT_JOB,
            *quick,
            f"train.epochs={total_epochs}",
        ),
        work / f"b-{tag}.log",
    )
    evaluation = run_child(hierarchy_cmd("eval", "--model", str(b_dir)), work / f"b-eval-{tag}.log")
    b["wall_s"] = round(b["wall_s"] + evaluation["wall_s"], 1)  # (a) includes its test evaluation too
    b.update(test_metrics(b_dir))
    b["epochs"] = total_epochs
    results["arms"]["(b) flat fine-only, same engine"] = b
    print("(b)", b, flush=True)

    # (c) plain timm loop with the wall-clock budget of (a)
    out = work / f"c-{tag}.json"
    script = work / f"c-{tag}.py"
    script.write_text(plain_timm(a["wall_s"], 3000 if args.quick else 0, fine_config["data"]["val_fraction"], out))
    c = run_child([sys.executable, str(script)], work / f"c-{tag}.log")
    c.update(json.loads(out.read_text()))
    results["arms"]["(c) plain timm loop, same wall clock"] = c
    print("(c)", c, flush=True)

    write_results(results, "fashion_mnist_quick" if args.quick else "fashion_mnist")


HISTORY = "## History of the default recipe"  # the section of the .md that every new run keeps


def save_results(name: str, title: str, results: dict, report: str, kept: str) -> Path:
    """Write benchmarks/results/<name>.json and .md (title, command, date, ``report``); the .md keeps the part of
    its earlier version from the heading ``kept`` on (written by hand) below the new report. Returns the folder."""
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    md = out / f"{name}.md"
    section = hand_written(md, kept)
    script = name.removesuffix("_quick")
    md.write_text(
        f"# {title}\n\n`python benchmarks/{script}.py` on {time.strftime('%Y-%m-%d')}\n\n{report}\n"
        + ("\n" + section if section else ""),
        encoding="utf-8",
    )
    return out


def hand_written(md: Path, kept: str) -> str:
    """The part of an earlier results file from the heading ``kept`` on (written by hand), or ""."""
    earlier = md.read_text(encoding="utf-8") if md.exists() else ""
    return earlier[earlier.index(kept) :] if kept in earlier else ""


def save_kind_results(name: str, title: str, intro: str, results: dict, report: str, kept: str) -> None:
    """Write benchmarks/results/<name>.json and .md with one section per machine kind (``results["kind"]``): this
    run replaces its own kind's section only. The .md keeps the part of its earlier version from the heading
    ``kept`` on (written by hand) below the sections."""
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    kinds = json.loads(path.read_text()).get("kinds", {}) if path.exists() else {}
    kinds[results["kind"]] = {**results, "text": report}
    path.write_text(json.dumps({"kinds": kinds}, indent=2, ensure_ascii=False))
    md = out / f"{name}.md"
    section = hand_written(md, kept)
    sections = [
        f"## {kind} ({', '.join(filter(None, [r.get('date'), r.get('device')]))})\n\n{r['text']}\n"
        for kind, r in kinds.items()
    ]
    md.write_text(
        f"# {title}\n\n{intro}\n\n" + "\n".join(sections) + ("\n" + section if section else ""), encoding="utf-8"
    )


def write_results(results: dict, name: str) -> None:
    """Print the table and write benchmarks/results/<name>.json and .md."""
    rows = [{"arm": arm, **m} for arm, m in results["arms"].items()]
    table = format_table(rows, ["arm", "fine_top1", "coarse_top1", "consistency", "epochs", "wall_s", "peak_rss_mb"])
    a, b, c = results["arms"].values()
    summary = (
        f"\n\ndevice: {results['device']}; test split: 10,000 images never used for training or tuning; "
        "every arm trains on all 60,000 training images (data.val_fraction=0; the recipe was chosen on a held-out "
        "6,000 of them).\n"
        f"(a) vs (c): fine top-1 {a['fine_top1'] - c['fine_top1']:+.4f}, "
        f"coarse top-1 {a['coarse_top1'] - c['coarse_top1']:+.4f}, wall-clock ratio {a['wall_s'] / c['wall_s']:.2f}\n"
        f"(a) vs (b): fine top-1 {a['fine_top1'] - b['fine_top1']:+.4f}, "
        f"coarse top-1 {a['coarse_top1'] - b['coarse_top1']:+.4f}\n"
        "coarse_top1 is the group of the fine prediction. (b) trains no coarse head (loss weight 0), so its "
        "consistency figure compares against an untrained head and means nothing. (a) and (b) average their "
        "configured test-time views (model.tta_flip, model.tta_shift; CPU latency per image in the JSON); (c) "
        "predicts from one view, as a plain script does."
    )
    print(table + summary)
    save_results(name, "Fashion-MNIST: hierarchy vs flat vs plain timm", results, table + summary, HISTORY)


if __name__ == "__main__":
    main()
