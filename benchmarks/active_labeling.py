"""Active labelling with a simulated annotator on Fashion-MNIST: what the question queue saves in labelling cost.

The 60,000 training images are the unlabelled pool; the annotator answers from their true labels; the 10,000 test
images serve only for the curves. Every arm starts from the same 100 random fine labels and the same first model,
and every round retrains with the same recipe (``hierarchy.active.retrain.fine_tune``: the current model
fine-tuned on every answer so far, as *Train on my answers* does). Arms, over one series of budgets in cost units
(a coarse label = 1, a fine label = ``--ratio``, a yes/no = 0.5):

(r) random images, fine labels, flat model (fine head only, flat decoding);
(u) the flat model's uncertainty sampling (smallest margin between its two likeliest classes), fine labels;
(h) random images, half of each round's budget on coarse labels, half on fine labels, two stages (the mixed-label
    training of the fine stage and the hierarchy's decoding);
(q) the question queue: the rule of ``hierarchy.active`` (confirm / choose / coarse, gain per cost, turns between
    predicted classes), the answers a real annotator would give, the actual cost of each answer charged.

(u) and (q) score a random 10,000 of the images not yet settled each round (plus every image with a partial answer),
not the whole pool: the usual way to keep a round's scoring cheap, the same for both.

Usage: python benchmarks/active_labeling.py [--quick] [--ratios 3,2,5,free] [--signals]
Writes benchmarks/results/active_labeling.{json,md,png}; --quick: a few small rounds to check the script;
--signals: instead, which signals of the rule pay (active_labeling_signals.{json,md}, chosen on a check split
held out of the pool, never on the test split).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from hierarchy.active.acquire import ranked, within_budget  # noqa: E402
from hierarchy.active.questions import Known, ask, follow_up_candidates  # noqa: E402
from hierarchy.active.retrain import fine_tune  # noqa: E402
from hierarchy.active.score import accuracy, score  # noqa: E402
from hierarchy.checkpoint import load_checkpoint  # noqa: E402
from hierarchy.config import QueueConfig, load_config, to_dict  # noqa: E402
from hierarchy.data import build_test, load_split  # noqa: E402
from hierarchy.infer.classifier import TorchClassifiers  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.models import build_model  # noqa: E402
from hierarchy.runner import configure_threads  # noqa: E402
from hierarchy.taxonomy import load_taxonomy  # noqa: E402

SEED_LABELS = 100
BUDGETS = (600, 900, 1350, 2000, 3000, 4500, 6750, 10000, 15000, 22500)
QUICK_BUDGETS = (450, 600)
SENSITIVITY_MAX = 6750
CANDIDATES = 10_000
TARGETS = (0.85, 0.88, 0.90)
FLAT = {"train.loss_weights": {"coarse": 0.0, "fine": 1.0}, "hierarchy.rule": "flat"}
ARMS = {"r": "(r) random, fine, flat", "u": "(u) uncertainty, fine, flat", "h": "(h) random, coarse + fine, two stages",
        "q": "(q) question queue"}  # fmt: skip
FINDINGS = "## Findings"


@dataclass
class Labels:
    """What an arm knows: fine labels, groups, ruled-out guesses (pool positions), what it spent and asked."""

    fine: dict[int, int] = field(default_factory=dict)
    coarse: dict[int, int] = field(default_factory=dict)
    excluded: dict[int, set[int]] = field(default_factory=dict)
    spent: float = 0.0
    asked: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.asked[what] = self.asked.get(what, 0) + 1


def costs(ratio: str) -> QueueConfig:
    """Cost settings of a sensitivity column: fine:coarse ``ratio`` (confirm at half a coarse label), or ``free``
    coarse labels at the default ratio."""
    free = ratio == "free"
    return QueueConfig(cost_fine=3.0 if free else float(ratio), cost_coarse=1.0, cost_confirm=0.5, free_coarse=free)


def training_set(pool, labels: Labels, parents: torch.Tensor):
    index = sorted(set(labels.fine) | set(labels.coarse))
    fine = torch.tensor([labels.fine.get(i, -1) for i in index])
    coarse = torch.tensor([labels.coarse.get(i, int(parents[labels.fine[i]]) if i in labels.fine else -1)
                           for i in index])  # fmt: skip
    part = pool.subset(torch.tensor(index))
    part.fine, part.coarse = fine, coarse
    return part


def first_state(taxonomy, device: torch.device, seed_set, work: Path, options: QueueConfig) -> dict:
    """The first model every arm starts from: the default network from scratch, trained on the seed labels (kept
    in ``work``: a later run with --reuse starts from the very same one)."""
    trained = work / "first" / "checkpoints" / "best.pt"
    if trained.exists():
        return load_checkpoint(trained)
    cfg = load_config("fine")
    cfg.model = load_config("coarse").model  # the default job's network
    cfg.stage = "fine"
    heads = {"coarse": taxonomy.num_classes("coarse"), "fine": taxonomy.num_classes("fine")}
    torch.manual_seed(0)
    blank = {"stage": "fine", "config": to_dict(cfg), "taxonomy": taxonomy.to_dict(), "heads": heads,
             "model": build_model(cfg.model, heads).state_dict()}  # fmt: skip
    first = QueueConfig(retrain_min_steps=300, retrain_lr=2e-3)
    return fine_tune(blank, seed_set, work / "first", first, device)


class Arm:
    def __init__(self, key: str, pool, test, taxonomy, options: QueueConfig, state: dict, seed: Labels, work: Path,
                 device: torch.device, spread: bool = True, also=None) -> None:  # fmt: skip
        """``spread``: (q) takes turns between predicted classes; ``also``: a second split measured each round."""
        self.key, self.pool, self.test, self.taxonomy, self.options = key, pool, test, taxonomy, options
        self.spread, self.also = spread, also
        self.state, self.work, self.device = state, work, device
        self.labels = Labels(dict(seed.fine), dict(seed.coarse), {}, seed.spent)
        self.parents = torch.tensor(taxonomy.parents)
        self.truth_fine, self.truth_coarse = pool.fine, pool.coarse
        self.rng = torch.Generator().manual_seed(1)
        self.flat = key in ("r", "u")
        self.only_child = torch.bincount(self.parents, minlength=taxonomy.num_classes("coarse")) == 1
        if options.free_coarse and key in ("h", "q"):  # the catalogue gives every image its group
            self.labels.coarse = {i: int(self.truth_coarse[i]) for i in range(len(pool))}
            named = self.only_child[self.truth_coarse].nonzero().flatten().tolist()
            self.labels.fine |= {i: int(self.truth_fine[i]) for i in named}

    def unsettled(self) -> torch.Tensor:
        settled = torch.zeros(len(self.pool), dtype=torch.bool)
        settled[list(self.labels.fine)] = True
        return (~settled).nonzero().flatten()

    def random_unlabelled(self, n: int, avoid_coarse: bool = False) -> list[int]:
        free = self.unsettled()
        if avoid_coarse and self.labels.coarse:
            known = torch.zeros(len(self.pool), dtype=torch.bool)
            known[list(self.labels.coarse)] = True
            free = free[~known[free]]
        return free[torch.randperm(len(free), generator=self.rng)[:n]].tolist()

    def candidates(self) -> torch.Tensor:
        free = self.unsettled()
        pick = free[torch.randperm(len(free), generator=self.rng)[:CANDIDATES]]
        partial = torch.tensor(sorted(set(self.labels.excluded) | set(self.labels.coarse)), dtype=torch.long)
        if len(partial) and not self.options.free_coarse:
            partial = partial[~torch.isin(partial, torch.tensor(list(self.labels.fine) or [-1]))]
            pick = torch.unique(torch.cat([pick, partial]))
        return pick

    def classifier(self) -> TorchClassifiers:
        return TorchClassifiers([self.state], self.device, views="one")

    def acquire(self, budget: float) -> None:
        remaining = budget - self.labels.spent
        c = self.options
        if self.key == "r":
            for i in self.random_unlabelled(int(remaining // c.cost_fine)):
                self.give_fine(i)
        elif self.key == "h":
            if c.free_coarse:
                fine_n = int(remaining // c.cost_fine)
            else:
                fine_n = int(remaining / 2 // c.cost_fine)
                for i in self.random_unlabelled(int((remaining - fine_n * c.cost_fine) // c.cost_coarse), True):
                    self.labels.coarse[i] = int(self.truth_coarse[i])
                    self.labels.spent += c.cost_coarse
                    self.labels.count("coarse")
            for i in self.random_unlabelled(fine_n):
                self.give_fine(i)
            for i, group in self.labels.coarse.items():  # a group of one fine label names it (as for (q))
                if self.only_child[group]:
                    self.labels.fine[i] = int(self.truth_fine[i])
        elif self.key == "u":
            pick = self.candidates()
            probs = score(self.classifier(), self.pool.subset(pick)).probs["fine"]
            top2 = probs.topk(2, -1).values
            order = (top2[:, 0] - top2[:, 1]).argsort()  # smallest margin first
            for i in pick[order[: int(remaining // c.cost_fine)]].tolist():
                self.give_fine(i)
        else:
            self.ask_questions(remaining)

    def give_fine(self, i: int) -> None:
        self.labels.fine[i] = int(self.truth_fine[i])
        self.labels.spent += self.options.cost_fine
        self.labels.count("fine")

    def ask_questions(self, remaining: float) -> None:
        pick = self.candidates()
        probs = score(self.classifier(), self.pool.subset(pick)).probs["fine"]
        known = Known.nothing(len(pick), probs.shape[1])
        for k, i in enumerate(pick.tolist()):
            known.coarse[k] = self.labels.coarse.get(i, -1)
            for f in self.labels.excluded.get(i, ()):
                known.excluded[k, f] = True
        questions = ask(probs, self.taxonomy, self.options, known)
        c = self.options
        order = ranked(questions) if self.spread else by_value(questions)
        for k in within_budget(questions, order, remaining):
            i, truth, kind = int(pick[k]), int(self.truth_fine[int(pick[k])]), questions.kind_name(k)
            if kind == "confirm":
                self.labels.spent += c.cost_confirm
                if int(questions.guess[k]) == truth:
                    self.labels.count("confirm_yes")
                else:  # "no", then the choose that follows it
                    self.labels.count("confirm_no")
                    self.choose(follow_up_candidates(questions, k, c), truth)
                self.labels.fine[i] = truth
            elif kind == "choose":
                self.choose(questions.candidates[k], truth)
                self.labels.fine[i] = truth
            else:
                self.labels.spent += c.cost_coarse
                self.labels.coarse[i] = int(self.truth_coarse[i])
                self.labels.count("coarse")
                if self.only_child[self.labels.coarse[i]]:  # a group of one fine label names it
                    self.labels.fine[i] = truth

    def choose(self, shown: list[int], truth: int) -> None:
        c = self.options
        self.labels.spent += min(len(shown) * c.cost_confirm, c.cost_fine)
        if truth not in shown:  # "none of these", then the type-ahead
            self.labels.spent += c.cost_fine
            self.labels.count("choose_none")
        else:
            self.labels.count("choose")

    def retrain(self, round_: int) -> float:
        started = time.time()
        folder = self.work / f"round{round_}"
        train_set = training_set(self.pool, self.labels, self.parents)
        self.state = fine_tune(self.state, train_set, folder, self.options, self.device, FLAT if self.flat else None,
                               seed=round_)  # fmt: skip
        shutil.rmtree(self.work / f"round{round_ - 1}", ignore_errors=True)
        return time.time() - started

    def measure(self) -> dict:
        scores = score(self.classifier(), self.test)
        measured = accuracy(scores)
        group = (scores.probs["implied_coarse"].argmax(-1) == scores.targets["coarse"]).float().mean().item()
        figures = {"fine_top1": measured["fine_top1"], "group_top1": round(group, 4)}
        if self.also is not None:
            figures["test_fine_top1"] = accuracy(score(self.classifier(), self.also))["fine_top1"]
        return figures


def run_setting(ratio: str, budgets, pool, test, taxonomy, state, seed: Labels, work: Path, device, arms,
                stop_at: float = 0.0) -> dict:  # fmt: skip
    options = costs(ratio)
    seed = Labels(dict(seed.fine), {}, {}, SEED_LABELS * options.cost_fine)
    curves = {}
    for key in arms:
        arm = Arm(key, pool, test, taxonomy, options, state, seed, work / ratio / key, device)
        rows = [{"budget": int(seed.spent), "spent": seed.spent, **arm.measure(), "fine_labels": SEED_LABELS,
                 "coarse_labels": 0, "asked": {}, "train_s": 0}]  # fmt: skip
        for round_, budget in enumerate(b for b in budgets if b > seed.spent):
            if stop_at and rows[-1]["fine_top1"] >= stop_at:
                break
            arm.acquire(budget)
            train_s = arm.retrain(round_ + 1)
            rows.append({"budget": budget, "spent": round(arm.labels.spent, 1), **arm.measure(),
                         "fine_labels": len(arm.labels.fine), "coarse_labels": len(arm.labels.coarse),
                         "asked": dict(arm.labels.asked), "train_s": round(train_s, 1)})  # fmt: skip
            print(f"[{ratio}] {ARMS[key]} budget {budget}: {rows[-1]}", flush=True)
        curves[key] = rows
    return curves


def by_value(questions) -> list[int]:
    """Gain per cost alone, no turns between classes (the signals trial's arm without spreading)."""
    usable = (torch.isfinite(questions.cost) & (questions.gain > 0)).nonzero().flatten()
    return usable[questions.value[usable].argsort(descending=True)].tolist()


SIGNALS = {  # the (q) variants of --signals: what each signal of the rule is worth
    "default (entropy gain, coarse_worth 0.5, turns)": ({}, True),
    "no turns between predicted classes": ({}, False),
    "coarse only where it settles (coarse_worth 0)": ({"coarse_worth": 0.0}, True),
    "coarse at its full entropy (coarse_worth 1)": ({"coarse_worth": 1.0}, True),
}
SIGNAL_BUDGETS = (600, 900, 1350, 2000, 3000, 4500)
CHECK_IMAGES = 10_000


def signals_trial(pool, test, taxonomy, device, work: Path, quick: bool) -> None:
    """The (q) variants on a pool less CHECK_IMAGES training images held out as the check split that the choice
    reads; the test split is reported beside it and no choice looks at it."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(5))
    held = len(pool) // 6 if quick else CHECK_IMAGES
    check, rest = pool.subset(order[:held].sort().values), pool.subset(order[held:].sort().values)
    budgets = QUICK_BUDGETS if quick else SIGNAL_BUDGETS
    seed_index = torch.randperm(len(rest), generator=torch.Generator().manual_seed(0))[:SEED_LABELS].tolist()
    seed = Labels({i: int(rest.fine[i]) for i in seed_index}, spent=SEED_LABELS * 3.0)
    state = first_state(taxonomy, device, training_set(rest, seed, torch.tensor(taxonomy.parents)), work, QueueConfig())
    curves = {}
    for name, (changes, spread) in SIGNALS.items():
        options = QueueConfig(**changes)
        arm = Arm("q", rest, check, taxonomy, options, state, seed, work / "signals" / str(len(curves)), device,
                  spread, also=test)  # fmt: skip
        rows = []
        for round_, budget in enumerate(budgets):
            arm.acquire(budget)
            arm.retrain(round_ + 1)
            rows.append({"budget": budget, "spent": round(arm.labels.spent, 1), **arm.measure()})
            print(f"[signals] {name} {rows[-1]}", flush=True)
        curves[name] = rows
    table = [{"variant": name, **{f"check @{r['budget']}": r["fine_top1"] for r in rows},
              "check mean": round(sum(r["fine_top1"] for r in rows) / len(rows), 4),
              "test mean": round(sum(r["test_fine_top1"] for r in rows) / len(rows), 4)}
             for name, rows in curves.items()]  # fmt: skip
    out = ROOT / "benchmarks" / "results" / ("active_labeling_signals_quick" if quick else "active_labeling_signals")
    out.with_suffix(".json").write_text(json.dumps({"cpu": cpu_kind(), "curves": curves}, indent=2))
    text = (f"# Active labelling: which signals of the rule pay\n\n`python benchmarks/active_labeling.py --signals` on "
            f"{time.strftime('%Y-%m-%d')}, {cpu_kind()}. (q) variants at fine:coarse 3 on the training split less "
            f"{CHECK_IMAGES:,} images held out as the check split (fine top-1 there at each budget, and the mean over "
            f"budgets); the test split's mean is beside it, read by no choice.\n\n"
            + format_table(table, list(table[0])) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)


def cost_to_reach(rows: list[dict], target: float) -> float | None:
    for row in rows:
        if row["fine_top1"] >= target:
            return row["spent"]
    return None


def rescaled(rows: list[dict], factor: float) -> list[dict]:
    """A fine-only arm's curve at another fine cost: the same labels, each at ``factor`` times the cost."""
    return [{**row, "spent": round(row["spent"] * factor, 1), "budget": round(row["budget"] * factor, 1)}
            for row in rows]  # fmt: skip


def report(results: dict) -> str:
    lines = []
    default = results["settings"]["3"]
    rows = []
    for k, budget in enumerate(row["budget"] for row in default["r"]):
        entry = {"budget": int(budget)}
        for key, curve in default.items():
            if k < len(curve):
                entry[ARMS[key]] = curve[k]["fine_top1"]
        rows.append(entry)
    lines.append("### Test fine top-1 at each budget (fine:coarse 3, confirm 0.5; cost units = coarse labels)\n")
    lines.append(format_table(rows, ["budget", *(ARMS[k] for k in default)]))
    q = default.get("q", [])
    if q:
        lines.append("\n### What (q) asked, cumulative\n")
        asked = [{"budget": int(r["budget"]), "spent": r["spent"], **r["asked"], "fine labels": r["fine_labels"],
                  "coarse labels": r["coarse_labels"]} for r in q]  # fmt: skip
        columns = ["budget", "spent", *sorted({k for r in q for k in r["asked"]}), "fine labels", "coarse labels"]
        lines.append(format_table(asked, columns))
    lines.append("\n### Cost to reach a test fine top-1 (cost units; '>' = not reached at the largest budget)\n")
    table = []
    for ratio, curves in results["settings"].items():
        for key, curve in curves.items():
            entry = {"setting": ratio_name(ratio), "arm": ARMS[key]}
            for target in TARGETS:
                reached = cost_to_reach(curve, target)
                entry[f"to {target:.2f}"] = reached if reached is not None else f"> {curve[-1]['spent']}"
            table.append(entry)
    lines.append(format_table(table, list(table[0])))
    return "\n".join(lines)


def ratio_name(ratio: str) -> str:
    return "fine:coarse 3, coarse free" if ratio == "free" else f"fine:coarse {ratio}"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(results["settings"])
    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4.2), squeeze=False)
    for ax, ratio in zip(axes[0], settings):
        for key, curve in results["settings"][ratio].items():
            ax.plot([r["spent"] for r in curve], [r["fine_top1"] for r in curve], marker="o", ms=3, label=ARMS[key])
        for target in TARGETS:
            ax.axhline(target, color="0.85", lw=0.8, zorder=0)
        ax.set_xscale("log")
        ax.set_xlabel("labelling cost (coarse labels)")
        ax.set_ylabel("test fine top-1")
        ax.set_ylim(0.6, 0.95)
        ax.set_title(ratio_name(ratio))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ratios", default="3,2,5,free", help="sensitivity columns; 3 (the default) is always run")
    parser.add_argument("--work", default="", help="scratch folder for the rounds' checkpoints (default: a temp dir)")
    parser.add_argument(
        "--reuse",
        default="",
        help="a results JSON whose (r), (u), (h) curves at fine:coarse 3 to keep "
        "(same budgets, seed and first model): only (q) and the sensitivity columns run again",
    )
    parser.add_argument(
        "--add",
        default="",
        help="with --reuse: only these sensitivity columns (e.g. 5,2), added to "
        "the reused results, every arm at fine:coarse 3 kept",
    )
    parser.add_argument("--report", default="", help="only write the .md and .png again from this results JSON")
    parser.add_argument("--signals", action="store_true", help="instead: the trial of the rule's signals (q variants)")
    args = parser.parse_args()
    if args.report:
        save(json.loads(Path(args.report).read_text()), args.quick)
        return
    configure_threads()
    device = torch.device("cpu")
    cfg = load_config("fine")
    taxonomy = load_taxonomy(cfg.data.taxonomy)
    pool, test = load_split(cfg.data, "train", taxonomy), build_test(cfg.data, taxonomy)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    if args.quick:
        pool, test = pool.subset(torch.arange(6000)), test.subset(torch.arange(1000))
    work = Path(args.work or tempfile.mkdtemp(prefix="active_labeling_"))
    if args.signals:
        signals_trial(pool, test, taxonomy, device, work, args.quick)
        return
    started = time.time()
    seed_index = torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:SEED_LABELS].tolist()
    seed = Labels({i: int(pool.fine[i]) for i in seed_index})
    seed_set = training_set(pool, seed, torch.tensor(taxonomy.parents))
    state = first_state(taxonomy, device, seed_set, work, QueueConfig())
    ratios = ["3", *[r for r in args.ratios.split(",") if r and r != "3"]]
    if args.add:  # columns added to a finished run: its results, its first model (in --work), the same seed labels
        ratios = [r for r in args.add.split(",") if r]
    results = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_kind(), "machine": platform.machine(),
               "budgets": list(budgets), "seed_labels": SEED_LABELS, "candidates": CANDIDATES,
               "settings": {}}  # fmt: skip
    if args.add:
        results = json.loads(Path(args.reuse).read_text())
    earlier = json.loads(Path(args.reuse).read_text())["settings"]["3"] if args.reuse else {}
    kept = {k: earlier[k] for k in ("r", "u", "h") if k in earlier}  # (q) always runs: it is what is measured
    kept = earlier if args.add else kept
    for ratio in ratios:
        # the fine-only arms' curves at another fine cost are the default run's, rescaled
        arms = [a for a in ("r", "u", "h", "q") if a not in kept] if ratio == "3" else ["h", "q"]
        # the sensitivity columns: budgets up to SENSITIVITY_MAX, each arm stopping once it reaches the top target
        part = budgets if ratio == "3" else tuple(b for b in budgets if b <= SENSITIVITY_MAX) or budgets
        stop = 0.0 if ratio == "3" else TARGETS[-1]
        curves = run_setting(ratio, part, pool, test, taxonomy, state, seed, work, device, arms, stop)
        if ratio == "3":
            curves = {k: kept[k] if k in kept else curves[k] for k in ("r", "u", "h", "q")}
            if kept:
                results["note"] = f"{', '.join(kept)} from {args.reuse} (same seed labels and first model)"
        if ratio != "3":
            factor = costs(ratio).cost_fine / 3.0
            curves = {k: rescaled(results["settings"]["3"][k], factor) for k in ("r", "u")} | curves
        results["settings"][ratio] = curves
        results["minutes"] = round((time.time() - started) / 60, 1)
        save(results, args.quick)
    print(report(results))


def save(results: dict, quick: bool) -> None:
    out = ROOT / "benchmarks" / "results"
    name = "active_labeling_quick" if quick else "active_labeling"
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    plot(results, out / f"{name}.png")
    md = out / f"{name}.md"
    earlier = md.read_text(encoding="utf-8") if md.exists() else ""
    kept = earlier[earlier.index(FINDINGS) :] if FINDINGS in earlier else ""
    head = (f"# Active labelling: cost to reach a fine top-1 (Fashion-MNIST, simulated annotator)\n\n"
            f"`python benchmarks/active_labeling.py` on {results['date']}, {results['cpu']}, "
            f"{results['minutes']} min{'; ' + results['note'] if results.get('note') else ''}\n\n"
            f"![curves]({name}.png)\n\n")  # fmt: skip
    md.write_text(head + report(results) + "\n\n" + kept, encoding="utf-8")


if __name__ == "__main__":
    main()
