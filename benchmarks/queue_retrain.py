"""Train on my answers, timed: a retrain from 300 answers with the default network, and how fast answers commit
while it runs.

A real server (``hierarchy serve --pool``) over 2,000 Fashion-MNIST test images written as PNG files, a model of the
default job's network (its accuracy does not matter here: a retrain's time depends on the network and its steps),
and a simulated annotator who answers each question from the true label over HTTP. It answers 300 questions,
starts *Train on my answers*, keeps answering while the retrain runs, and records the time of every answer's POST
(the server stores it, synced, before it replies) before and during the retrain, and the retrain's own time.
While the retrain runs the annotator answers one question every quarter second (a brisk human answers about one a
second).

Usage: python benchmarks/queue_retrain.py [--answers 300] [--work DIR]
Writes benchmarks/results/queue_retrain.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import hierarchy_cmd, run_child  # noqa: E402
from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from benchmarks.serve_process import ServerProcess  # noqa: E402
from hierarchy.config import load_config  # noqa: E402
from hierarchy.data import build_test  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.taxonomy import load_taxonomy  # noqa: E402

POOL = 2000


def write_pool(folder: Path) -> dict[str, str]:
    """The first POOL test images as PNG files; returns {file name: fine class}."""
    cfg = load_config("fine")
    taxonomy = load_taxonomy(cfg.data.taxonomy)
    test = build_test(cfg.data, taxonomy)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(POOL):
        name = f"{i:05d}.png"
        Image.fromarray(test.images[i, 0].numpy().astype(np.uint8)).save(folder / name)
        truth[name] = taxonomy.fine[int(test.fine[i])]
    return truth


def answer_for(question: dict, truth: dict[str, str], parents: dict[str, str]) -> dict:
    """What an annotator who knows the true label answers."""
    true = truth[question["name"]]
    kind, shown = question["kind"], question["shown"]
    if kind == "confirm":
        answer = "yes" if shown[0] == true else "no"
    elif kind == "choose":
        answer = true  # picked from the candidates, or typed after "none of these"
    else:
        answer = parents[true]
    return {"item": question["item"], "kind": kind, "answer": answer, "shown": shown, "seconds": 1.0}


def answer_some(
    server: ServerProcess, n: int, truth: dict, parents: dict, until=None, pace: float = 0.0
) -> list[float]:
    """Answer ``n`` questions (or until ``until()`` is true), a "no" followed by its choose, one every ``pace``
    seconds at most; POST times in ms."""
    times: list[float] = []
    while len(times) < n and not (until and until()):
        status, body = server.get("/api/queue/next?n=5")
        if status != 200 or not body["questions"]:
            break
        for question in body["questions"]:
            while question is not None:
                started = time.perf_counter()
                status, reply = server.post_json("/api/answers", answer_for(question, truth, parents))
                times.append((time.perf_counter() - started) * 1000)
                time.sleep(pace)
                if status != 200:
                    raise SystemExit(f"answer refused: {reply}")
                question = reply.get("follow_up")
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"answers": len(times), "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1), "max_ms": round(ordered[-1], 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--work", default="")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="queue_retrain_"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    if not (model / "fine" / "checkpoints" / "best.pt").exists():
        run_child(hierarchy_cmd("run", "--stage", "all", "--run-dir", str(model), "data.limit=3000",
                                "train.epochs=1", "data.val_fraction=0.1"), work / "model.log")  # fmt: skip
    truth = write_pool(work / "pool")
    taxonomy = load_taxonomy("fashion_mnist")
    parents = dict(zip(taxonomy.fine, (taxonomy.coarse[p] for p in taxonomy.parents)))
    db = work / "answers.sqlite"
    for stale in work.glob("answers*"):  # a fresh queue: no answers, no versions
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    server = ServerProcess("--model", str(model / "fine"), "--pool", str(work / "pool"), "--db", str(db), threads=None)
    try:
        before = answer_some(server, args.answers, truth, parents)
        status, started = server.post_json("/api/retrain", {})
        assert status == 200, started
        clock = time.perf_counter()

        def finished() -> bool:
            return not server.get("/api/queue/status")[1]["retrain"]["running"]

        # a brisk annotator: one answer every quarter second while the retrain runs
        during = answer_some(server, 10_000, truth, parents, until=finished, pace=0.25)
        while not finished():
            time.sleep(0.5)
        wall = time.perf_counter() - clock
        for _ in range(240):  # the server loads the new version and re-ranks the pool with it
            status_body = server.get("/api/queue/status")[1]
            if status_body["model"] != "v000" or not status_body["retrain"]["last"]["accepted"]:
                break
            time.sleep(0.5)
        swapped = time.perf_counter() - clock
    finally:
        server.stop()
    record = json.loads((work / "answers.models" / started["version"] / "version.json").read_text())
    results = {
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_kind(), "machine": platform.machine(),
        "answers_before": summary(before), "answers_during": summary(during) if during else None,
        "retrain": {"version": record["version"], "trained_on": record["trained_on"], "held_back": record["held_back"],
                    "seconds_in_child": record["seconds"], "wall_s": round(wall, 1), "accepted": record["accepted"],
                    "check": record["check"], "model_after": status_body["model"],
                    "new_questions_after_s": round(swapped, 1)},
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results"
    (out / "queue_retrain.json").write_text(json.dumps(results, indent=2))
    rows = [{"when": "before the retrain", **results["answers_before"]}]
    if during:
        rows.append({"when": "during the retrain", **results["answers_during"]})
    retrain = results["retrain"]
    text = (f"# Train on my answers: retrain time and answer latency\n\n`python benchmarks/queue_retrain.py` on "
            f"{results['date']}, {results['cpu']}\n\n"
            f"Retrain from {retrain['trained_on'] + retrain['held_back']} answered images ({retrain['trained_on']} "
            f"trained on, {retrain['held_back']} held back): **{retrain['wall_s']} s** from the click to the new "
            f"version checked ({retrain['seconds_in_child']} s in the child process); accepted: {retrain['accepted']}; "
            f"the page's model afterwards: {retrain['model_after']}, asking from it "
            f"{retrain['new_questions_after_s']} s after the click.\n\nPOST /api/answers (stored and synced before "
            f"the reply), measured by the client:\n\n" + format_table(rows, list(rows[0])) + "\n")  # fmt: skip
    (out / "queue_retrain.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
