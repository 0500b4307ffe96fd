"""``hierarchy suggest`` (the first questions over a pool, as a CSV) and ``hierarchy retrain`` (a new version from
the answers so far): the command-line side of the question queue."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from hierarchy.active.answers import AnswerStore
from hierarchy.active.pool import load_pool
from hierarchy.active.queue import Queue
from hierarchy.active.retrain import current_model, retrain_from_answers, versions_dir
from hierarchy.config import queue_options
from hierarchy.errors import UserError
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.paths import atomic_write
from hierarchy.runner import configure_threads, select_device

GROUPS_HELP = "CSV path,group: groups a catalogue already holds (free coarse labels, never asked)"
SUGGEST_COLUMNS = ["rank", "kind", "level", "name", "shown", "prob", "gain", "cost", "cumulative_cost", "item", "model"]


def default_db(pool: list[str]) -> Path:
    """Answers beside the pool: ``PHOTOS/`` → ``PHOTOS.answers.sqlite`` (a labels file: ``labels.answers.sqlite``)."""
    first = Path(pool[0]).expanduser()
    return first.parent / f"{first.stem or first.name}.answers.sqlite"


def open_queue(models: list[str], pool: list[str], db: Path, options, device: str, precision: str = "fp32",
               groups: str | None = None) -> Queue:  # fmt: skip
    """The pool scored by the current model of ``db``'s versions (or ``models``), ready to rank and answer; with
    ``groups``, a catalogue's groups stored as free coarse answers first."""
    current = current_model(versions_dir(db), models[0])
    chosen = [current, *models[1:]] if current != models[0] else models
    classifiers = TorchClassifiers.load(chosen, select_device(device), precision=precision)
    queue = Queue(load_pool(pool), AnswerStore(db), options)
    queue.rescore(classifiers, version_name(current, models[0]))
    if groups:
        added = queue.import_groups(Path(groups))
        print(f"{added} groups from {groups} stored as answers (the queue will not ask for them)")
    return queue


def version_name(current: str, given: str) -> str:
    """``v000`` for the model the queue started from, else the version's folder name (``v003``)."""
    return "v000" if current == given else Path(current).name


def cmd_suggest(args: argparse.Namespace) -> int:
    configure_threads()
    options = queue_options(args.settings)
    if not args.pool:
        raise UserError("give the pool: hierarchy suggest --model RUN --pool PHOTOS/ --budget 100 --out queue.csv")
    db = Path(args.db) if args.db else default_db(args.pool)
    queue = open_queue(args.model, args.pool, db, options, args.device, groups=args.groups)
    rows = queue.suggest(args.budget)
    with atomic_write(Path(args.out), "w") as f:
        writer = csv.DictWriter(f, SUGGEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "shown": "|".join(row["shown"]), "prob": json.dumps(row["prob"])})
    kinds = {k: sum(1 for r in rows if r["kind"] == k) for k in ("confirm", "choose", "coarse")}
    spent = rows[-1]["cumulative_cost"] if rows else 0
    print(f"{len(rows)} questions ({', '.join(f'{n} {k}' for k, n in kinds.items())}), expected cost {spent:g} of "
          f"{args.budget:g} → {args.out}")  # fmt: skip
    if queue.scored.broken:
        print(f"{len(queue.scored.broken)} files could not be read and were skipped:")
        for file, reason in list(queue.scored.broken.items())[:20]:
            print(f"  {file}: {reason}")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    configure_threads()
    options = queue_options(args.settings)
    db = Path(args.db)
    if not db.is_file():
        raise UserError(f"{db} not found: give the answers database of `hierarchy serve --pool` (--db)")
    folder = Path(args.version_dir) if args.version_dir else None
    record = retrain_from_answers(db, args.model[0], options, select_device(args.device), folder)
    check = record["check"]
    verdict = "now current" if record["accepted"] else "kept aside (worse on the held-back answers)"
    print(f"{record['version']}: trained on {record['trained_on']} answered images in {record['seconds']} s; "
          f"held-back {record['held_back']}: new {check['new']['score']} vs current {check['current']['score']}; "
          f"{verdict} → {versions_dir(db) / record['version']}")  # fmt: skip
    return 0


def add_parsers(sub, epilog: str) -> None:
    sug = sub.add_parser("suggest", help="rank questions over an unlabelled pool: what to ask first, within a budget",
                         epilog=epilog)  # fmt: skip
    sug.add_argument("--model", action="append", required=True, help="fine run folder or checkpoint")
    sug.add_argument("--pool", action="append", help="folder, image file, .txt list or labels file; repeatable")
    sug.add_argument("--budget", type=float, required=True, help="cost units to spend (a coarse label = 1)")
    sug.add_argument("--out", required=True, help="the queue as CSV, first question first")
    sug.add_argument("--db", help="answers so far (default: beside the pool, POOL.answers.sqlite)")
    sug.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    sug.add_argument("--groups", help=GROUPS_HELP)
    sug.add_argument("words", nargs="*", metavar="key=value", help="queue.* settings, e.g. queue.cost_fine=5")
    sug.set_defaults(func=cmd_suggest)

    ret = sub.add_parser("retrain", help="fine-tune the current model on the queue's answers (a new version)",
                         epilog=epilog)  # fmt: skip
    ret.add_argument("--model", action="append", required=True, help="the model the queue started from")
    ret.add_argument("--db", required=True, help="the answers database of `hierarchy serve --pool`")
    ret.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ret.add_argument("--version-dir", help=argparse.SUPPRESS)  # the server names the folder it watches
    ret.add_argument("words", nargs="*", metavar="key=value", help="queue.* settings, e.g. queue.retrain_max_steps=200")
    ret.set_defaults(func=cmd_retrain)
