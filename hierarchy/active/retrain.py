"""Retrain in place: fine-tune the current model on the answers so far, check it on the answers held back, keep
every version, and make it current only when it is at least as good.

``fine_tune`` is the one recipe (the Label page's *Train on my answers*, ``hierarchy retrain`` and every arm of
``benchmarks/active_labeling.py``): start from the current model's weights and settings, train
``queue.retrain_epochs`` passes over the answers (at least ``retrain_min_steps`` and at most
``retrain_max_steps`` optimizer steps) at ``queue.retrain_lr``, with the model's own augmentation and its
mixed-label settings, so a coarse answer trains the coarse head and a confirmed guess is a fine label.

A version is a run folder under ``MODELS/`` (``v001``, ``v002`` …: ``checkpoints/best.pt``, ``train.log``,
``version.json`` with its check and what it started from, ``answers.csv`` with the answers it saw);
``MODELS/current.json`` names the current one and is replaced (atomically) only by an accepted version.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from hierarchy.checkpoint import load_checkpoint, save_checkpoint
from hierarchy.config import QueueConfig, from_dict
from hierarchy.engine import Run, fit, seed_everything
from hierarchy.errors import UserError
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.models import build_model
from hierarchy.paths import atomic_write
from hierarchy.taxonomy import build_taxonomy

log = logging.getLogger(__name__)
CURRENT = "current.json"


class Progress:
    """A fit hook that writes ``progress.json`` (steps done of all) every few steps, for the page to show."""

    def __init__(self, path: Path | None, steps: int) -> None:
        self.path, self.steps, self.done, self.started = path, steps, 0, time.time()

    def after_step(self, done=None) -> None:
        self.done += 1
        if self.path is not None and (self.done % 5 == 0 or self.done == self.steps):
            self.write("training")

    def write(self, phase: str, **extra: Any) -> None:
        if self.path is None:
            return
        state = {
            "phase": phase,
            "step": self.done,
            "steps": self.steps,
            "seconds": round(time.time() - self.started, 1),
        }
        with atomic_write(self.path, "w") as f:
            json.dump({**state, **extra}, f)


def steps_for(n: int, batch_size: int, options: QueueConfig) -> int:
    """Optimizer steps of a retrain on ``n`` answers."""
    wanted = math.ceil(options.retrain_epochs * n / batch_size)
    return max(options.retrain_min_steps, min(options.retrain_max_steps, wanted))


def repeated(dataset, total: int, seed: int):
    """``dataset`` cut or cycled (in seeded shuffled passes) to ``total`` samples: one epoch of the recipe."""
    g = torch.Generator().manual_seed(seed)
    passes = math.ceil(total / len(dataset))
    order = torch.cat([torch.randperm(len(dataset), generator=g) for _ in range(passes)])[:total]
    return dataset.subset(order)


def fine_tune(
    current: dict[str, Any], train_set, folder: Path, options: QueueConfig, device: torch.device,
    settings: dict[str, Any] | None = None, progress: Path | None = None, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Train a new version from checkpoint ``current`` on ``train_set`` (every labelled answer); returns its
    checkpoint state (also in ``folder/checkpoints/best.pt``). ``settings``: attribute overrides on the model's
    own settings, ``{"train.loss_weights": …}`` (the benchmark's flat arms)."""
    if len(train_set) == 0:
        raise UserError("no answers to train on yet: answer some questions first")
    cfg = from_dict(current["config"])
    cfg.run_dir, cfg.resume, cfg.init_from = str(folder), "", str(current.get("path", ""))
    train = cfg.train
    train.epochs, train.time_budget, train.lr, train.seed = 1, 0.0, options.retrain_lr, seed
    train.freeze_backbone_epochs, train.uda, train.unlabeled = 0, 0.0, ""
    train.warmup_epochs = 0.1
    for key, value in (settings or {}).items():
        section, _, name = key.partition(".")
        setattr(getattr(cfg, section), name, value)
    steps = steps_for(len(train_set), train.batch_size, options)
    taxonomy = build_taxonomy(current["taxonomy"], source=str(current.get("path", "checkpoint")))
    folder.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    model = build_model(cfg.model, dict(current["heads"]))
    model.load_state_dict(current["model"])
    model = model.to(device)
    hook = Progress(progress, steps)
    run = Run(cfg, taxonomy, folder, device)
    main_metric = "val/fine_top1" if "fine" in current["heads"] else "val/mean_acsa"
    state = fit(model, repeated(train_set, steps * train.batch_size, seed), None, run, main_metric, (hook,))
    best = load_checkpoint(folder, prefer="best.pt")
    if current.get("temperatures"):  # no validation here to fit new ones: the parent's are the nearest guess
        best["temperatures"] = current["temperatures"]
        save_checkpoint(Path(best["path"]), {k: v for k, v in best.items() if k != "path"})
    hook.write("trained", epoch_loss=state.get("history", [{}])[-1].get("train/loss"))
    return best


def versions_dir(db: Path) -> Path:
    """Where the versions trained on a database's answers live: ``answers.sqlite`` → ``answers.models/``."""
    return db.with_name(db.stem + ".models")


def current_model(models: Path, given: str) -> str:
    """The current version's run folder, or ``given`` (``--model``) before any version was accepted."""
    pointer = models / CURRENT
    if pointer.exists():
        folder = Path(json.loads(pointer.read_text(encoding="utf-8"))["model"])
        if (folder / "checkpoints" / "best.pt").exists():
            return str(folder)
    return given


def next_version(models: Path) -> Path:
    taken = [int(p.name[1:]) for p in models.glob("v[0-9][0-9][0-9]") if p.name[1:].isdigit()]
    return models / f"v{max(taken, default=0) + 1:03d}"


def make_current(models: Path, folder: Path) -> None:
    with atomic_write(models / CURRENT, "w", fsync=True) as f:
        json.dump({"version": folder.name, "model": str(folder.resolve())}, f)


def save_version(folder: Path, record: dict[str, Any]) -> None:
    with atomic_write(folder / "version.json", "w", fsync=True) as f:
        json.dump(record, f, indent=2)


def answer_sets(db: Path, taxonomy, image_size: int):
    """(train, check, listing): every image with a label from the answers, decoded once into memory, split by the
    fixed 1 in 10 of the review's manifest (``split_of`` on the image's key: the same image always on one side);
    ``listing`` is one row per image for the version's answers.csv."""
    from hierarchy.active.answers import AnswerStore, resolve
    from hierarchy.data.images import ImageFiles, TensorImages
    from hierarchy.serve.corrections import split_of

    store = AnswerStore(db)
    try:
        rows = store.rows()
    finally:
        store.close()
    files = {row["item"]: (row["file"], None if row["x1"] is None else (row["x1"], row["y1"], row["x2"], row["y2"]))
             for row in rows}  # fmt: skip
    parent_of = dict(zip(taxonomy.fine, (taxonomy.coarse[p] for p in taxonomy.parents)))
    listing = []
    for key, state in resolve(rows, parent_of).items():
        if state.fine is None and state.coarse is None:
            continue
        file, box = files[key]
        listing.append({"item": key, "file": file, "box": box, "fine": state.fine or "", "coarse": state.coarse or "",
                        "split": split_of(key)})  # fmt: skip

    def decoded(part: list[dict]):
        fine = [taxonomy.fine.index(r["fine"]) if r["fine"] else -1 for r in part]
        coarse = [taxonomy.coarse.index(r["coarse"]) for r in part]
        files = ImageFiles([r["file"] for r in part], fine, coarse, image_size, [r["box"] for r in part],
                           [str(k) for k in range(len(part))])  # fmt: skip
        kept, images = [], []
        for k in range(len(files)):
            sample = files[k]
            if sample[0] is None:  # the file went missing or broke since it was answered
                log.warning("answer for %s left out: %s", sample[1], sample[2])
                continue
            kept.append(k)
            images.append(sample[0])
        if not kept:
            return TensorImages(torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8), torch.zeros(0),
                                torch.zeros(0), "answers")  # fmt: skip
        pick = torch.tensor(kept)
        return TensorImages(torch.stack(images), torch.tensor(fine)[pick], torch.tensor(coarse)[pick], "answers")

    train = [r for r in listing if r["split"] == "train"]
    check = [r for r in listing if r["split"] == "val"]
    return decoded(train), decoded(check), listing


def retrain_from_answers(
    db: Path, given: str, options: QueueConfig, device: torch.device, folder: Path | None = None
) -> dict[str, Any]:
    """One version: fine-tune the current model (``current.json``, else ``given``) on every answer in ``db``,
    check it and the current one on the held-back answers, keep it on disk, make it current if at least as good.
    Returns the version's record (``version.json``)."""
    from hierarchy.active.score import accuracy, score

    started = time.time()
    models = versions_dir(db)
    parent = current_model(models, given)
    current = load_checkpoint(parent)
    if "fine" not in current["heads"]:
        raise UserError(f"{parent} is a {current.get('stage')} model: the queue retrains a fine model")
    taxonomy = build_taxonomy(current["taxonomy"], source=str(current["path"]))
    image_size = from_dict(current["config"]).data.image_size
    train_set, check_set, listing = answer_sets(db, taxonomy, image_size)
    folder = folder or next_version(models)
    folder.mkdir(parents=True, exist_ok=True)
    progress = folder / "progress.json"
    state = fine_tune(current, train_set, folder, options, device, progress=progress)
    Progress(progress, 0).write("checking")
    scores = {}
    for name, model in (("new", state), ("current", current)):
        classifier = TorchClassifiers([model], device, views="one")
        scores[name] = accuracy(score(classifier, check_set, workers=0)) if len(check_set) else {"n": 0, "score": None}
    new, old = scores["new"]["score"], scores["current"]["score"]
    accepted = new is None or old is None or new >= old
    record = {
        "version": folder.name, "started_from": str(parent), "answers": len(listing), "trained_on": len(train_set),
        "held_back": len(check_set), "check": scores, "accepted": accepted, "seconds": round(time.time() - started, 1),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "settings": dataclasses.asdict(options),
    }  # fmt: skip
    with atomic_write(folder / "answers.csv", "w") as f:
        writer = csv.DictWriter(f, ["item", "file", "box", "fine", "coarse", "split"])
        writer.writeheader()
        writer.writerows(
            {**r, "box": "" if r["box"] is None else ",".join(f"{v:g}" for v in r["box"])} for r in listing
        )
    save_version(folder, record)
    if accepted:
        make_current(models, folder)
    Progress(progress, 0).write("done", accepted=accepted)
    return record
