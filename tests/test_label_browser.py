"""The Label page of `hierarchy serve --pool` in a real headless Chromium against the real server, answered with the
keyboard: twenty questions of each kind stored with their seconds (a "no" followed by its choose, "none of these"
then the type-ahead), Train on my answers up to the new current model, a server killed mid-retrain that comes back
with every acknowledged answer and its old model, and the input it must refuse or keep apart."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import make_image_folder
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.serve_process import ServerProcess
from hierarchy.active.answers import resolve
from hierarchy.active.pool import load_pool
from hierarchy.serve.corrections import split_of

pytestmark = pytest.mark.slow  # a trained model, server processes, retrains and a headless browser

QUICK_RETRAIN = ["queue.retrain_min_steps=5", "queue.retrain_max_steps=5"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """Sixty 28 px images in six folders, and one file that is not an image. The images the retrain would hold back
    to check a version (one in ten, by key) are left out, so every answer trains and a version is always accepted:
    what the page shows after a retrain is then known in advance."""
    folder = make_image_folder(tmp_path_factory.mktemp("label") / "pool", list("abcdef"), 10, size=(28, 28))
    for item in load_pool([str(folder)]):
        if split_of(item.key) == "val":
            Path(item.file).unlink()
    (folder / "a" / "broken.png").write_bytes(b"not an image at all")
    return folder


@pytest.fixture(scope="module")
def serve(pool, folder_runs, tmp_path_factory):
    """``serve(kinds)``: one server per set of question kinds for the module, its answers in a database of its own."""
    base, servers = tmp_path_factory.mktemp("answers"), {}

    def start(kinds: str) -> ServerProcess:
        if kinds not in servers:
            db = base / f"{kinds}.sqlite"
            servers[kinds] = ServerProcess("--model", str(folder_runs["fine"]), "--pool", str(pool), "--db", str(db),
                                           f"queue.kinds={kinds}", *QUICK_RETRAIN)  # fmt: skip
            servers[kinds].db = db
        return servers[kinds]

    yield start
    for server in servers.values():
        server.stop()


def url(server: ServerProcess, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def wait_for(driver, condition, seconds: float = 60):
    """Wait until ``condition`` holds; the page redraws under it, so a stale element only means "not yet"."""
    return WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException]).until(condition)


def question(driver) -> dict:
    """The question on screen, as the page marks it."""
    q = driver.find_element(By.ID, "question")
    return {"item": q.get_attribute("data-item"), "kind": q.get_attribute("data-kind"),
            "seq": int(q.get_attribute("data-seq") or 0), "model": q.get_attribute("data-model"),
            "words": driver.find_element(By.ID, "question-words").text,
            "name": driver.find_element(By.ID, "item-name").text}  # fmt: skip


def acknowledged(driver) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-acknowledged") or 0)


def open_label(driver, server: ServerProcess) -> dict:
    driver.get(url(server, "/label"))
    wait_for(driver, lambda d: question(d)["seq"] >= 1)
    return question(driver)


def press(driver, *keys: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(*keys)


def answer(driver, key: str) -> dict:
    """Press ``key`` on the question on screen; wait until the server stored the answer and the next question shows."""
    before, count = question(driver)["seq"], acknowledged(driver)
    press(driver, key)
    wait_for(driver, lambda d: acknowledged(d) == count + 1 and question(d)["seq"] > before)
    return question(driver)


def rows(db: Path) -> list[dict]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM answers ORDER BY id")]


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_twenty_confirms_with_a_no_and_its_choose(browser, serve):
    server = serve("confirm")
    first = open_label(browser, server)
    assert first["kind"] == "confirm" and re.fullmatch(r"Is this an? .+\?", first["words"])
    image = browser.find_element(By.ID, "item-image")
    wait_for(browser, lambda d: image.get_attribute("naturalWidth") == "28")
    assert "pixelated" in browser.find_element(By.ID, "stage").get_attribute("class")  # 28 px, scaled up sharp
    assert image.size["width"] >= 300
    follow = answer(browser, "n")  # no: the choose for the same item is asked at once
    assert follow["kind"] == "choose" and follow["item"] == first["item"] and "Which is it?" in follow["words"]
    answer(browser, "1")
    for _ in range(19):
        assert question(browser)["kind"] == "confirm"
        answer(browser, "y")
    stored = rows(server.db)
    confirms = [r for r in stored if r["kind"] == "confirm"]
    assert len(confirms) == 20 and all(r["seconds"] > 0 for r in stored)
    assert [r["answer"] for r in confirms].count("no") == 1 and confirms[0]["label"] is None
    chosen = [r for r in stored if r["kind"] == "choose"]
    assert len(chosen) == 1 and chosen[0]["item"] == first["item"] and chosen[0]["label"]
    assert all(r["label"] == json.loads(r["shown"])[0] for r in confirms[1:])  # a yes labels the guess
    assert len({r["item"] for r in confirms}) == 20  # never the same item twice
    assert acknowledged(browser) == len(stored) == 21
    wait_for(browser, lambda d: text(d, "count-answers") == "21")


def test_twenty_chooses_with_none_of_these_typed(browser, serve):
    server = serve("choose")
    first = open_label(browser, server)
    assert first["kind"] == "choose" and first["words"] == "Which is it?"
    offered = [b.get_attribute("data-answer") for b in browser.find_elements(By.CSS_SELECTOR, "#choices .choice")]
    typed = next(name for name in ("Sneaker", "Sandal", "Ankle boot", "Dress") if name not in offered)
    press(browser, "0")  # none of these: the type-ahead over every fine label
    box = wait_for(browser, ec.visibility_of_element_located((By.ID, "typeahead-input")))
    assert not browser.find_element(By.ID, "choices").is_displayed()
    box.send_keys(typed[:4])
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#typeahead-list [aria-selected='true']").text
             .startswith(typed))  # fmt: skip
    count = acknowledged(browser)
    box.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: acknowledged(d) == count + 1 and question(d)["seq"] > first["seq"])
    for k in range(19):
        assert question(browser)["kind"] == "choose"
        answer(browser, "2" if k % 2 else "1")
    stored = rows(server.db)
    assert len(stored) == 20 and all(r["kind"] == "choose" and r["seconds"] > 0 for r in stored)
    assert stored[0]["item"] == first["item"] and stored[0]["answer"] == stored[0]["label"] == typed
    assert all(r["label"] in json.loads(r["shown"]) for r in stored[1:])


def test_twenty_groups_with_a_skip(browser, serve):
    server = serve("coarse")
    first = open_label(browser, server)
    assert first["kind"] == "coarse" and first["words"] == "Which group?"
    groups = browser.find_elements(By.CSS_SELECTOR, "#choices .choice")
    assert len(groups) == 6 and groups[0].find_element(By.TAG_NAME, "kbd").text == "1"
    names = [first["name"]]
    names.append(answer(browser, "s")["name"])  # skip: stored, never asked again
    for k in range(19):
        assert question(browser)["kind"] == "coarse"
        names.append(answer(browser, str(k % 6 + 1))["name"])
    stored = rows(server.db)
    assert len(stored) == 20 and all(r["kind"] == "coarse" and r["seconds"] > 0 for r in stored)
    assert stored[0]["answer"] == "skip" and stored[0]["label"] is None
    assert all(r["label"] == json.loads(r["shown"])[int(k) % 6] for k, r in enumerate(stored[1:]))
    assert len(set(names)) == len(names) and not any("broken" in n for n in names)


def test_train_on_my_answers_shows_the_new_version(browser, serve):
    server = serve("confirm")
    open_label(browser, server)
    while int(text(browser, "count-answers")) < 3:  # run alone, the page has answers to train on too
        answer(browser, "y")
    assert text(browser, "count-model") == "v000"
    press(browser, "t")
    wait_for(browser, lambda d: "v001" in text(d, "retrain-state"), 30)  # starting or training, then the result
    wait_for(browser, lambda d: text(d, "count-model") == "v001", 600)
    assert re.fullmatch(r"v001 is now current \(.+\)", text(browser, "retrain-state"))
    newest = browser.find_element(By.CSS_SELECTOR, "#versions .version")
    assert newest.get_attribute("data-version") == "v001" and "current" in newest.text
    wait_for(browser, lambda d: question(d)["model"] == "v001")  # fresh questions, asked by the new model
    assert browser.find_element(By.ID, "retrain").is_enabled()
    assert not browser.find_element(By.ID, "error").is_displayed()


def retrain_children(models: Path) -> list[int]:
    """Processes retraining into ``models`` (``hierarchy retrain --version-dir models/vNNN``)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--version-dir" in words and any(w.startswith(str(models).encode()) for w in words):
            found.append(int(proc.name))
    return found


def test_a_server_killed_mid_retrain_keeps_every_answer_and_the_old_model(browser, pool, folder_runs, tmp_path):
    db = tmp_path / "answers.sqlite"
    args = ["--model", str(folder_runs["fine"]), "--pool", str(pool), "--db", str(db), "queue.kinds=confirm",
            "queue.retrain_min_steps=3000", "queue.retrain_max_steps=3000"]  # fmt: skip
    models = tmp_path / "answers.models"
    server = ServerProcess(*args)
    try:
        open_label(browser, server)
        for key in "yyn1y":  # 1: the choose after the no
            answer(browser, key)
        press(browser, "t")
        wait_for(browser, lambda d: re.search(r"Training v001: step [\d,]+ of 3,000", text(d, "retrain-state")), 300)
        for _ in range(3):  # the page keeps asking while the model trains
            answer(browser, "y")
        assert retrain_children(models)
        ids = browser.execute_script("return window.hx.label.state.acknowledged")
        server.stop(signal.SIGKILL)
    finally:
        server.stop(signal.SIGKILL)
    deadline = time.time() + 30
    while retrain_children(models) and time.time() < deadline:  # the retrain dies with its server
        time.sleep(0.5)
    assert not retrain_children(models)
    assert [r["id"] for r in rows(db)] == sorted(ids) and len(ids) == 8
    assert not (models / "current.json").exists() and not (models / "v001" / "version.json").exists()
    server = ServerProcess(*args)
    try:
        status, body = server.get("/api/queue/status")
        assert status == 200 and body["model"] == "v000" and body["answers"] == 8
        open_label(browser, server)
        assert text(browser, "count-model") == "v000" and text(browser, "count-answers") == "8"
        assert question(browser)["model"] == "v000"
        unfinished = browser.find_element(By.CSS_SELECTOR, "#versions .version[data-version='v001']")
        assert "did not finish" in unfinished.text
    finally:
        server.stop()


def test_bad_input_is_refused_with_its_reason(browser, serve, pool):
    server = serve("coarse")
    open_label(browser, server)
    # the file that is not an image: listed in the status with its reason, never asked
    broken = wait_for(browser, ec.visibility_of_element_located((By.ID, "broken")))
    assert broken.find_element(By.TAG_NAME, "summary").text == "1 unreadable"
    broken.find_element(By.TAG_NAME, "summary").click()
    assert "broken.png" in text(browser, "broken-list")
    status, body = server.get("/api/queue/next?n=50")
    assert status == 200 and body["questions"] and not any("broken" in q["name"] for q in body["questions"])
    # an answer for an item not in the pool (a page left open while the pool changed): 400, its reason on the page
    count = acknowledged(browser)
    browser.execute_script("window.hx.label.state.current.item = '/elsewhere\\tgone.png\\t'")
    press(browser, "1")
    error = wait_for(browser, ec.visibility_of_element_located((By.ID, "error")))
    assert "not in this pool" in error.text and acknowledged(browser) == count
    # a label outside the taxonomy
    browser.execute_script("const q = window.hx.label.state.current; q.item = document.getElementById('question')"
                           ".dataset.item; q.shown = ['Hat', ...q.shown]")  # fmt: skip
    press(browser, "1")
    wait_for(browser, lambda d: "'Hat' is not a" in text(d, "error"))
    assert acknowledged(browser) == count
    answer(browser, "2")  # the question stayed on screen: answered properly, it is stored
    assert not browser.find_element(By.ID, "error").is_displayed()
    item = rows(server.db)[-1]["item"]
    status, body = server.post_json("/api/answers", {"item": "nowhere", "kind": "coarse", "answer": "top"})
    assert status == 400 and "not in this pool" in body["detail"]
    status, body = server.post_json("/api/answers", {"item": item, "kind": "choose", "answer": "Hat", "shown": []})
    assert status == 400 and "'Hat' is not a" in body["detail"] and "Sneaker" in body["detail"]


def test_two_pages_answering_one_item_keep_both_the_later_wins(browser, serve):
    server = serve("coarse")
    first = open_label(browser, server)
    one = browser.current_window_handle
    browser.switch_to.new_window("tab")
    try:
        assert open_label(browser, server)["item"] == first["item"]  # neither has answered it yet
        browser.switch_to.window(one)
        answer(browser, "1")
        browser.switch_to.window(browser.window_handles[-1])
        answer(browser, "2")
    finally:
        browser.close()
        browser.switch_to.window(one)
    stored = [r for r in rows(server.db) if r["item"] == first["item"]]
    assert len(stored) == 2 and stored[0]["label"] != stored[1]["label"]
    _, info = server.get("/api/info")
    assert resolve(stored, info["parents"])[first["item"]].coarse == stored[1]["label"]
