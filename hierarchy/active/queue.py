"""The question queue over a pool: the pool scored by the current model, what the answers so far settle, and the
questions in the order the rule ranks them. ``hierarchy suggest`` writes its first questions to a CSV; the Label
page of ``hierarchy serve --pool`` asks them one at a time and stores the answers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from hierarchy.active.acquire import ranked, within_budget
from hierarchy.active.answers import Answer, AnswerStore, resolve
from hierarchy.active.pool import PoolItem, as_dataset
from hierarchy.active.questions import Known, Questions, ask, follow_up_candidates
from hierarchy.active.score import score
from hierarchy.config import QueueConfig
from hierarchy.errors import UserError
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.infer.decode import group_matrix

log = logging.getLogger(__name__)
RERANK_EVERY = 20  # answers between re-rankings (in the page's GET, never in an answer's POST)


@dataclass
class Scored:
    """The pool as one model saw it: fine probabilities of the readable items and their positions in the pool."""

    version: str
    fine: torch.Tensor  # (R, F)
    index: torch.Tensor  # (R,) pool positions
    broken: dict[str, str]  # {file: reason}


class Queue:
    def __init__(self, items: list[PoolItem], store: AnswerStore, options: QueueConfig) -> None:
        self.items, self.store, self.options = items, store, options
        self.position = {item.key: k for k, item in enumerate(items)}
        self.lock = threading.Lock()
        self.scored: Scored | None = None
        self.classifiers: TorchClassifiers | None = None
        self.order: list[int] = []  # rows of scored, best question first
        self.questions: Questions | None = None
        self.ranked_with = 0  # answers the ranking knew (they are stored in order: the rest came since)

    # --- the model's view ---------------------------------------------------------------------------------------

    def rescore(self, classifiers: TorchClassifiers, version: str, batch_size: int = 64) -> Scored:
        """Score the pool with ``classifiers`` (a new version), then re-rank; the old ranking serves meanwhile."""
        if "fine" not in classifiers.heads:
            raise UserError("the question queue asks about fine labels: give a fine model (--model artifacts/fine/RUN)")
        scores = score(classifiers, as_dataset(self.items, classifiers.input_size), batch_size)
        scored = Scored(version, scores.probs["fine"], scores.index, scores.skipped)
        self.classifiers = classifiers  # same taxonomy for every version: what the answers mean stays
        self.rerank(scored)
        return scored

    @property
    def taxonomy(self):
        return self.classifiers.taxonomy

    def resolved(self, rows: list[dict] | None = None) -> dict:
        taxonomy = self.taxonomy
        parent_of = dict(zip(taxonomy.fine, (taxonomy.coarse[p] for p in taxonomy.parents)))
        return resolve(self.store.rows() if rows is None else rows, parent_of)

    def known(self, keys: list[str], resolved: dict) -> Known:
        """What the answers say about these items, as the rule reads it."""
        taxonomy = self.taxonomy
        known = Known.nothing(len(keys), len(taxonomy.fine))
        for row, key in enumerate(keys):
            state = resolved.get(key)
            if state is None:
                continue
            if state.coarse is not None:
                known.coarse[row] = taxonomy.coarse.index(state.coarse)
            for name in state.excluded:
                known.excluded[row, taxonomy.fine.index(name)] = True
        return known

    def rerank(self, scored: Scored | None = None) -> None:
        """Questions for every readable item whose fine label is not settled, ranked by the rule; the scores, the
        questions and their order change together."""
        rows = self.store.rows()
        scored, resolved = scored or self.scored, self.resolved(rows)
        keys = [self.items[k].key for k in scored.index.tolist()]
        known = self.known(keys, resolved)
        open_ = torch.tensor([resolved.get(key) is None or resolved[key].fine is None for key in keys])
        questions = ask(scored.fine, self.taxonomy, self.options, known)
        order = ranked(questions, open_)
        with self.lock:
            self.scored, self.questions, self.order, self.ranked_with = scored, questions, order, len(rows)

    def snapshot(self) -> tuple[Scored, Questions, list[int]]:
        with self.lock:
            return self.scored, self.questions, self.order

    # --- asking -------------------------------------------------------------------------------------------------

    def question(self, row: int, follow_up: bool = False, view: tuple | None = None) -> dict:
        """What the page shows for scored row ``row`` (of ``view``, a snapshot; default the current one): the item,
        the kind, what to show, the probabilities."""
        scored, q, _ = view or self.snapshot()
        taxonomy = self.taxonomy
        item = self.items[int(scored.index[row])]
        kind = "choose" if follow_up else q.kind_name(row)
        probs = q.fine[row]
        if follow_up:  # asked after a "no": from what the item's answers say now
            now = ask(scored.fine[row : row + 1], taxonomy, self.options, self.known([item.key], self.resolved()))
            probs = now.fine[0]
        group = probs @ group_matrix(taxonomy)
        if kind == "confirm":
            shown = [taxonomy.fine[int(q.guess[row])]]
        elif kind == "choose":
            ids = follow_up_candidates(now, 0, self.options, excluded=False) if follow_up else q.candidates[row]
            shown = [taxonomy.fine[i] for i in ids]
        else:
            shown = [taxonomy.coarse[i] for i in group.argsort(descending=True).tolist()]
        probability = {taxonomy.fine[i]: round(float(p), 4) for i, p in enumerate(probs.tolist())}
        probability |= {taxonomy.coarse[i]: round(float(p), 4) for i, p in enumerate(group.tolist())}
        return {
            "item": item.key, "index": int(scored.index[row]), "name": item.name, "kind": kind,
            "level": "coarse" if kind == "coarse" else "fine", "shown": shown,
            "prob": {name: probability[name] for name in shown}, "gain": round(float(q.gain[row]), 4),
            "cost": round(float(q.cost[row]), 3), "model": scored.version,
        }  # fmt: skip

    def next(self, n: int = 1, skip: set[str] = frozenset()) -> list[dict]:
        """The next ``n`` questions, leaving out items answered since the last ranking and those in ``skip``
        (shown in this browser already)."""
        rows = self.store.rows()
        if len(rows) - self.ranked_with >= RERANK_EVERY:  # groups and "no"s answered since narrow new questions
            self.rerank()
        answered = {row["item"] for row in rows[self.ranked_with :]}
        view = self.snapshot()
        scored, _, order = view
        found = []
        for row in order:
            key = self.items[int(scored.index[row])].key
            if key in answered or key in skip:
                continue
            found.append(self.question(row, view=view))
            if len(found) == n:
                break
        return found

    def suggest(self, budget: float) -> list[dict]:
        """The questions to ask first, in order, whose expected costs fit ``budget``."""
        view = self.snapshot()
        chosen = within_budget(view[1], view[2], budget)
        spent, out = 0.0, []
        for rank, row in enumerate(chosen, 1):
            question = self.question(row, view=view)
            spent += question["cost"]
            out.append({"rank": rank, **question, "cumulative_cost": round(spent, 3)})
        return out

    # --- answering ----------------------------------------------------------------------------------------------

    def answer(self, payload: dict, client: str = "") -> dict:
        """Check and store one answer (committed before this returns); a "no" to a confirm returns the choose
        that follows it. Raises UserError for an item outside the pool, a label outside the taxonomy, or an answer
        that does not fit the question."""
        key = str(payload.get("item", ""))
        if key not in self.position:
            raise UserError("that item is not in this pool: reload the page to get the current questions")
        item, taxonomy = self.items[self.position[key]], self.taxonomy
        kind, answer = str(payload.get("kind", "")), str(payload.get("answer", "")).strip()
        shown = [str(s) for s in payload.get("shown") or []]
        if kind not in ("confirm", "choose", "coarse"):
            raise UserError(f"kind {kind!r}: one of confirm, choose, coarse")
        level = "coarse" if kind == "coarse" else "fine"
        names = taxonomy.coarse if level == "coarse" else taxonomy.fine
        if kind == "confirm":
            if answer not in ("yes", "no", "skip") or len(shown) != 1 or shown[0] not in taxonomy.fine:
                raise UserError("a confirm takes answer yes, no or skip, and shown = [the guess]")
            label = shown[0] if answer == "yes" else None
        elif answer == "skip":
            label = None
        else:
            label = canonical(taxonomy, answer, level)
            if label is None:
                raise UserError(f"{answer!r} is not a {taxonomy.title(level)} of taxonomy {taxonomy.name}: choose "
                                f"one of {', '.join(names)}")  # fmt: skip
        seconds = payload.get("seconds")
        seconds = None if seconds is None else max(0.0, min(float(seconds), 86400.0))
        record = Answer(key, item.file, item.box, kind, level, shown, answer, label, seconds, self.scored.version,
                        client)  # fmt: skip
        answer_id = self.store.add(record)
        result = {"id": answer_id, "item": key, "label": label, "level": level}
        if kind == "confirm" and answer == "no":
            view = self.snapshot()
            hits = (view[0].index == self.position[key]).nonzero().flatten()
            if len(hits):
                result["follow_up"] = self.question(int(hits[0]), follow_up=True, view=view)
        return result

    def import_groups(self, path: Path) -> int:
        """Groups a catalogue already holds (CSV: ``path,group``; the path as the pool names it, relative to its
        folder, or the file itself): stored as coarse answers from ``catalogue`` (no seconds: they cost nothing),
        once per image, so the queue never asks for them and the retrain learns from them. Returns how many."""
        import pandas as pd

        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"--groups {path}: {exc}") from None
        if not {"path", "group"} <= set(frame.columns):
            raise UserError(f"--groups {path} needs the columns path,group (has {', '.join(frame.columns)})")
        taxonomy = self.taxonomy
        by_name = {item.name: item for item in self.items} | {item.file: item for item in self.items}
        known = self.resolved()
        added, missing = 0, 0
        for where, group in zip(frame["path"], frame["group"]):
            item = by_name.get(where)
            if item is None:
                missing += 1
                continue
            name = canonical(taxonomy, group, "coarse")
            if name is None:
                raise UserError(f"--groups {path}: {group!r} ({where}) is not a group of taxonomy {taxonomy.name}: "
                                f"use one of {', '.join(taxonomy.coarse)}")  # fmt: skip
            if known.get(item.key) is not None and known[item.key].coarse is not None:
                continue
            self.store.add(Answer(item.key, item.file, item.box, "coarse", "coarse", [], name, name, None,
                                  "catalogue", "catalogue"))  # fmt: skip
            added += 1
        if missing:
            log.warning("--groups %s: %d rows name no image of the pool (left out)", path, missing)
        if added:
            self.rerank()
        return added

    def status(self) -> dict:
        rows = self.store.rows()
        resolved = self.resolved(rows)
        settled = sum(1 for r in resolved.values() if r.fine)
        return {
            "pool": len(self.items), "broken": len(self.scored.broken) if self.scored else 0,
            "answers": len(rows), "fine_settled": sum(1 for r in resolved.values() if r.fine),
            "coarse_only": sum(1 for r in resolved.values() if r.coarse and not r.fine),
            "model": self.scored.version if self.scored else "",
            "open": len(self.scored.index) - settled if self.scored else 0,
        }  # fmt: skip


def canonical(taxonomy, text: str, level: str) -> str | None:
    """The class name ``text`` names at ``level`` (a name or an alias, any case), or None."""
    try:
        return taxonomy.names(level)[taxonomy.lookup(text, level)]
    except UserError:
        return None
