"""The question queue without a browser: which question the rule asks and why, the order of a batch, how answers
fold into labels, `hierarchy suggest` and `hierarchy retrain` on a real tiny model and a real pool with a broken
file, the answers API (stored before the reply), and a server killed mid-retrain keeping its model."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import torch
from conftest import in_process, make_image_folder, refused

from hierarchy.active.acquire import ranked, within_budget
from hierarchy.active.answers import Answer, AnswerStore, resolve
from hierarchy.active.questions import KINDS, Known, ask
from hierarchy.config import QueueConfig
from hierarchy.errors import UserError
from hierarchy.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy("fashion_mnist")
FINE = {name: i for i, name in enumerate(TAXONOMY.fine)}
PARENT = dict(zip(TAXONOMY.fine, (TAXONOMY.coarse[p] for p in TAXONOMY.parents)))


def probs(*weights: dict[str, float]) -> torch.Tensor:
    """Rows of fine probabilities from ``{name: weight}`` (the rest share what is left)."""
    rows = []
    for given in weights:
        rest = (1 - sum(given.values())) / (len(FINE) - len(given))
        rows.append([given.get(name, rest) for name in FINE])
    return torch.tensor(rows)


def test_confident_guess_is_confirmed_and_spread_one_is_a_choice():
    p = probs({"Shirt": 0.85}, {"Shirt": 0.3, "T-shirt/top": 0.3, "Pullover": 0.3})
    q = ask(p, TAXONOMY, QueueConfig(free_coarse=True))
    assert q.kind_name(0) == "confirm" and TAXONOMY.fine[int(q.guess[0])] == "Shirt"
    assert q.kind_name(1) == "choose"
    assert {TAXONOMY.fine[i] for i in q.candidates[1]} >= {"Shirt", "T-shirt/top", "Pullover"}
    # a confirm costs its yes/no plus, when the answer is no, the choose that follows
    assert 0.5 < float(q.cost[0]) < 1.5


def test_costs_decide_the_kind():
    p = probs({"Shirt": 0.8, "T-shirt/top": 0.1})
    cheap_confirm = ask(p, TAXONOMY, QueueConfig(free_coarse=True, cost_confirm=0.2))
    dear_confirm = ask(p, TAXONOMY, QueueConfig(free_coarse=True, cost_confirm=2.0, cost_fine=2.0))
    assert cheap_confirm.kind_name(0) == "confirm" and dear_confirm.kind_name(0) == "choose"


def test_known_group_and_no_narrow_the_question():
    p = probs({"Sneaker": 0.4, "Shirt": 0.3, "Pullover": 0.2})
    known = Known.nothing(1, len(FINE))
    known.coarse[0] = TAXONOMY.coarse.index("top")
    known.excluded[0, FINE["Shirt"]] = True
    q = ask(p, TAXONOMY, QueueConfig(), known)
    names = {TAXONOMY.fine[i] for i in range(len(FINE)) if q.fine[0, i] > 0}
    assert names == {"T-shirt/top", "Pullover"}  # the group's labels less the ruled-out one
    assert q.kind_name(0) != "coarse" and TAXONOMY.fine[int(q.guess[0])] == "Pullover"


def test_coarse_question_where_the_group_settles_it_and_never_when_free_or_not_allowed():
    p = probs({"Trouser": 0.3, "Bag": 0.3, "Dress": 0.3})  # three groups of one fine label each
    assert ask(p, TAXONOMY, QueueConfig()).kind_name(0) == "coarse"
    assert ask(p, TAXONOMY, QueueConfig(free_coarse=True)).kind_name(0) != "coarse"
    only_confirm = ask(p, TAXONOMY, QueueConfig(kinds="confirm"))
    assert only_confirm.kind_name(0) == "confirm"
    with pytest.raises(UserError, match="confirm, choose, coarse"):
        ask(p, TAXONOMY, QueueConfig(kinds="confirm,guess"))


def test_no_predicted_class_floods_a_batch_and_the_budget_holds():
    # ten near-identical Shirt look-alikes outrank the rest by gain per cost; a batch still takes the others in
    p = probs(*[{"Shirt": 0.45, "T-shirt/top": 0.4}] * 10, {"Bag": 0.4, "Sandal": 0.35}, {"Coat": 0.4, "Dress": 0.3},
              {"Trouser": 0.97})  # fmt: skip
    q = ask(p, TAXONOMY, QueueConfig(free_coarse=True))
    assert float(q.value[0]) > float(q.value[10]) > float(q.value[12])
    order = ranked(q)
    first = [TAXONOMY.fine[int(q.guess[i])] for i in order[:5]]
    assert first.count("Shirt") <= 3 and {"Bag", "Coat"} <= set(first)
    assert order[-1] == 12 or "Trouser" not in first  # an easy class is not forced in
    chosen = within_budget(q, order, 2.5)
    assert sum(float(q.cost[i]) for i in chosen) <= 2.5 < sum(float(q.cost[i]) for i in order[: len(chosen) + 1])
    allowed = torch.zeros(len(p), dtype=torch.bool)
    allowed[10] = True
    assert ranked(q, allowed) == [10]


def row(item: str, kind: str, answer: str, label: str | None, level: str = "fine", shown=("Shirt",)) -> dict:
    return {"item": item, "kind": kind, "answer": answer, "label": label, "level": level, "shown": json.dumps(shown)}


def test_answers_fold_in_order_later_wins():
    rows = [
        row("a", "confirm", "no", None),  # not a Shirt
        row("a", "coarse", "top", "top", "coarse"),
        row("a", "choose", "Pullover", "Pullover"),
        row("b", "choose", "Shirt", "Shirt"),
        row("b", "choose", "Coat", "Coat"),  # a second browser answered later: it wins
        row("c", "choose", "Shirt", "Shirt"),
        row("c", "coarse", "shoe", "shoe", "coarse"),  # a group that contradicts the fine label clears it
        row("d", "coarse", "bag", "bag", "coarse"),  # a group of one fine label names it
        row("e", "confirm", "skip", None),
    ]
    found = resolve(rows, PARENT)
    assert (found["a"].fine, found["a"].coarse, found["a"].excluded) == ("Pullover", "top", {"Shirt"})
    assert (found["b"].fine, found["b"].coarse) == ("Coat", "outer")
    assert (found["c"].fine, found["c"].coarse) == (None, "shoe")
    assert (found["d"].fine, found["d"].coarse) == ("Bag", "bag")
    assert (found["e"].fine, found["e"].coarse) == (None, None)


def test_answer_store_keeps_history_across_connections(tmp_path):
    store = AnswerStore(tmp_path / "a.sqlite")
    for answer in ("Shirt", "Coat"):
        store.add(Answer("k", "f.jpg", None, "choose", "fine", ["Shirt", "Coat"], answer, answer, 1.5, "v000"))
    store.close()
    again = AnswerStore(tmp_path / "a.sqlite")
    assert [r["label"] for r in again.rows()] == ["Shirt", "Coat"] and again.count() == 2
    again.close()
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(UserError, match="not an answers database"):
        AnswerStore(tmp_path / "bad.sqlite")


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """Sixty generated images in three folders, and one file that is no image."""
    root = make_image_folder(tmp_path_factory.mktemp("pool") / "photos", ["a", "b", "c"], 20)
    (root / "a" / "broken.jpg").write_bytes(b"not an image")
    return root


def test_suggest_writes_the_queue_within_budget_and_lists_broken_files(tmp_path, pool, folder_runs, capsys,
                                                                       monkeypatch):  # fmt: skip
    out, db = tmp_path / "queue.csv", tmp_path / "answers.sqlite"
    code, printed, _ = in_process(capsys, monkeypatch, "suggest", "--model", str(folder_runs["fine"]), "--pool",
                                  str(pool), "--budget", "12", "--out", str(out), "--db", str(db),
                                  "queue.cost_fine=4")  # fmt: skip
    assert code == 0 and "broken.jpg" in printed
    rows = list(csv.DictReader(out.open()))
    assert rows and float(rows[-1]["cumulative_cost"]) <= 12
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["kind"] in KINDS and "broken" not in r["name"] for r in rows)
    assert "queue.cost_fine=4" not in refused(capsys, monkeypatch, "suggest", "--model", str(folder_runs["fine"]),
                                               "--pool", str(pool), "--budget", "1", "--out", str(out),
                                               "queue.cost_fin=4")  # fmt: skip


def test_answers_api_stores_before_replying_and_refuses_bad_input(tmp_path, pool, folder_runs):
    from fastapi.testclient import TestClient

    from hierarchy.serve import build_app

    db = tmp_path / "answers.sqlite"
    app = build_app([str(folder_runs["fine"])], pool=[str(pool)], db=str(db), device="cpu")
    with TestClient(app) as client:
        status = client.get("/api/queue/status").json()
        assert status["pool"] == 61 and list(status["broken"]) == [str(pool / "a" / "broken.jpg")]
        questions = client.get("/api/queue/next", params={"n": 5}).json()["questions"]
        assert len(questions) == 5 and all("broken" not in q["name"] for q in questions)
        first = questions[0]
        sent = {"item": first["item"], "kind": "confirm", "answer": "no", "shown": ["Shirt"], "seconds": 2.5}
        reply = client.post("/api/answers", json=sent).json()
        with sqlite3.connect(db) as other:  # another connection sees it the moment the reply is here
            assert other.execute("SELECT answer, seconds FROM answers").fetchall() == [("no", 2.5)]
        follow_up = reply["follow_up"]
        assert follow_up["kind"] == "choose" and "Shirt" not in follow_up["shown"]
        for bad, words in [({**sent, "item": "elsewhere\tx.jpg\t"}, "not in this pool"),
                           ({**sent, "kind": "choose", "answer": "Hat"}, "not a class"),
                           ({**sent, "kind": "coarse", "answer": "Shirt"}, "not a group"),
                           ({**sent, "answer": "maybe"}, "yes, no or skip")]:  # fmt: skip
            answer = client.post("/api/answers", json=bad)
            assert answer.status_code == 400 and words in answer.json()["detail"], answer.json()
        assert client.get("/pool/9999").status_code == 404
        assert client.get("/api/queue/next").json()["questions"][0]["item"] != first["item"]  # answered: not again


@pytest.mark.slow  # two short trainings
def test_retrain_makes_versions_from_the_answers(tmp_path, pool, folder_runs, capsys, monkeypatch):
    from hierarchy.active.pool import load_pool

    db = tmp_path / "answers.sqlite"
    store = AnswerStore(db)
    for k, item in enumerate(load_pool([str(pool)])):
        if "broken" in item.file:
            continue
        label, level = (("Trouser", "fine") if "/b/" in item.file else ("top", "coarse")) if k % 3 else ("Bag", "fine")
        store.add(Answer(item.key, item.file, None, "choose" if level == "fine" else "coarse", level, [label], label,
                         label, 1.0, "v000"))  # fmt: skip
    store.close()
    words = ["retrain", "--model", str(folder_runs["fine"]), "--db", str(db), "--device", "cpu",
             "queue.retrain_min_steps=3", "queue.retrain_max_steps=3"]  # fmt: skip
    code, printed, _ = in_process(capsys, monkeypatch, *words)
    assert code == 0 and "v001" in printed
    models = tmp_path / "answers.models"
    record = json.loads((models / "v001" / "version.json").read_text())
    assert record["answers"] == 60 and record["trained_on"] + record["held_back"] == 60
    assert record["started_from"] == str(folder_runs["fine"])
    assert (models / "v001" / "checkpoints" / "best.pt").exists()
    assert len(list(csv.DictReader((models / "v001" / "answers.csv").open()))) == 60
    current = models / "current.json"
    assert record["accepted"] == current.exists()
    code, printed, _ = in_process(capsys, monkeypatch, *words)
    second = json.loads((models / "v002" / "version.json").read_text())
    expected_parent = str((models / "v001").resolve()) if record["accepted"] else str(folder_runs["fine"])
    assert code == 0 and second["started_from"] == expected_parent
    assert "not found" in refused(capsys, monkeypatch, "retrain", "--model", str(folder_runs["fine"]), "--db",
                                  str(tmp_path / "none.sqlite"))  # fmt: skip


def test_queue_settings_are_checked(capsys, monkeypatch, folder_runs, pool, tmp_path):
    err = refused(capsys, monkeypatch, "suggest", "--model", str(folder_runs["fine"]), "--pool", str(pool),
                  "--budget", "5", "--out", str(tmp_path / "q.csv"), "queue.cost_confirm=-1")  # fmt: skip
    assert "queue.cost_confirm" in err
    err = refused(capsys, monkeypatch, "suggest", "--model", str(folder_runs["fine"]), "--pool", str(pool),
                  "--budget", "5", "--out", str(tmp_path / "q.csv"), "train.lr=1")  # fmt: skip
    assert "queue" in err


def test_catalogue_groups_are_free_answers_never_asked(tmp_path, pool, folder_runs, capsys, monkeypatch):
    groups = tmp_path / "groups.csv"
    groups.write_text("path,group\n" + "".join(f"a/{i}.png,tops\n" for i in range(20)) + "elsewhere.png,bag\n")
    out, db = tmp_path / "queue.csv", tmp_path / "answers.sqlite"
    words = ["suggest", "--model", str(folder_runs["fine"]), "--pool", str(pool), "--budget", "40", "--out", str(out),
             "--db", str(db), "--groups", str(groups)]  # fmt: skip
    code, printed, _ = in_process(capsys, monkeypatch, *words)
    assert code == 0 and "20 groups" in printed
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*), MIN(label), MAX(seconds) FROM answers").fetchone() == (20, "top", None)
    asked = {r["name"]: r["kind"] for r in csv.DictReader(out.open())}
    assert not any(kind == "coarse" for name, kind in asked.items() if name.startswith("a/"))
    in_process(capsys, monkeypatch, *words)  # again: nothing stored twice
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM answers").fetchone() == (20,)
    groups.write_text("path,group\na/1.png,hats\n")
    assert "not a group" in refused(capsys, monkeypatch, *words[:-4], "--db", str(tmp_path / "b.sqlite"), "--groups",
                                    str(groups))  # fmt: skip


def test_an_image_with_its_group_is_asked_its_fine_label_after_the_next_ranking(tmp_path, pool, folder_runs):
    from fastapi.testclient import TestClient

    from hierarchy.active.queue import RERANK_EVERY
    from hierarchy.serve import build_app

    app = build_app([str(folder_runs["fine"])], pool=[str(pool)], db=str(tmp_path / "a.sqlite"), device="cpu",
                    queue_settings=["queue.kinds=coarse,choose"])  # fmt: skip
    with TestClient(app) as client:
        questions = client.get("/api/queue/next", params={"n": RERANK_EVERY + 5}).json()["questions"]
        first = questions[0]
        for q in questions[:RERANK_EVERY]:
            answer = "top" if q["kind"] == "coarse" else q["shown"][0]
            assert client.post("/api/answers", json={**q, "answer": answer}).status_code == 200
        grouped = [q["item"] for q in questions[:RERANK_EVERY] if q["kind"] == "coarse"]
        assert grouped and first["item"] in grouped
        later = {q["item"]: q for q in client.get("/api/queue/next", params={"n": 50}).json()["questions"]}
        asked_again = [later[item] for item in grouped if item in later]
        assert asked_again and all(q["kind"] == "choose" for q in asked_again)
        assert all(set(q["shown"]) <= {"T-shirt/top", "Pullover", "Shirt"} for q in asked_again)  # inside "top"
