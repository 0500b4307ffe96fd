"""`hierarchy serve` as a real server process: predictions, the review grid, corrections that survive SIGKILL,
the exported manifest training a model, and what users and attackers send (bad paths, bombs, non-images)."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from conftest import in_process, labelled_folder, refused
from PIL import Image

from benchmarks.serve_process import ServerProcess

pytestmark = pytest.mark.slow  # a trained model, a labelled folder and several server processes


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory, folder_runs):
    """A tiny fine model, a folder of photos labelled by it, and a server reviewing the labels."""
    base = tmp_path_factory.mktemp("serve")
    photos, labels = labelled_folder(base, folder_runs["fine"], 15, "labels.csv")
    (base / "secret.txt").write_text("not for the web")
    (photos / "x" / "link.png").symlink_to(base / "secret.txt")  # a symlink out of the labelled folder
    server = ServerProcess("--model", str(folder_runs["fine"]), "--labels", str(labels), "--max-upload-mb", "0.2")
    shared = {"base": base, "model": folder_runs["fine"], "coarse": folder_runs["coarse"], "labels": labels,
              "photos": photos, "server": server}  # fmt: skip
    yield shared
    shared["server"].stop()  # the one running now (a test restarts it)


def test_predict_one_photo_and_a_chosen_crop(reviewed):
    server = reviewed["server"]
    photo = (reviewed["photos"] / "x" / "0.png").read_bytes()
    status, found = server.upload(photo)
    assert status == 200, found
    assert (found["width"], found["height"]) == (40, 56)
    (region,) = found["regions"]  # a whole-image model: one region, the photo
    assert region["kind"] == "image" and region["box"] == [0.0, 0.0, 40.0, 56.0]
    fine = region["heads"]["fine"]
    assert len(fine["top"]) == 5 and fine["top"][0]["label"] == fine["label"]
    assert [t["prob"] for t in fine["top"]] == sorted((t["prob"] for t in fine["top"]), reverse=True)
    parents = server.get("/api/info")[1]["parents"]
    assert parents[fine["label"]] == region["heads"]["coarse"]["label"]  # fine agrees with coarse
    status, cropped = server.upload(photo, box="4,6,30,50")
    assert status == 200 and [r["kind"] for r in cropped["regions"]] == ["manual"]
    assert cropped["regions"][0]["box"] == [4.0, 6.0, 30.0, 50.0]
    assert server.upload(photo, box="1,2,3")[0] == 400


def test_concurrent_predictions_share_batches(reviewed):
    server = reviewed["server"]
    photo = (reviewed["photos"] / "y" / "1.png").read_bytes()
    before = server.get("/healthz")[1]["predicted"]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: server.upload(photo), range(24)))
    assert all(status == 200 for status, _ in answers)
    after = server.get("/healthz")[1]["predicted"]
    assert after["photos"] - before["photos"] == 24
    assert after["batches"] - before["batches"] < 24  # requests that arrived together ran together


def test_bad_uploads_get_clear_answers_and_the_server_lives(reviewed):
    server = reviewed["server"]
    status, answer = server.upload(b"this is not an image", name="notes.png")
    assert status == 400 and "not an image" in answer["detail"]
    status, answer = server.upload(os.urandom(300_000))  # over --max-upload-mb 0.2
    assert status == 413 and "0.2 MB" in answer["detail"]
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 M pixels in a few tens of kB
    assert len(bomb.getvalue()) < 200_000
    status, answer = server.upload(bomb.getvalue())
    assert status == 413 and "pixels" in answer["detail"]
    cut = (reviewed["photos"] / "x" / "2.png").read_bytes()[:80]
    assert server.upload(cut)[0] == 400
    assert server.get("/healthz")[0] == 200


def test_photos_are_served_only_from_the_labelled_roots(reviewed):
    server, base = reviewed["server"], reviewed["base"]
    status, data = server.get("/files/0/x/0.png")
    assert status == 200 and data[:4] == b"\x89PNG"
    secret = str(base / "secret.txt")
    for path in ["/files/0/../secret.txt", "/files/0/x/../../secret.txt", "/files/0/%2e%2e/secret.txt",
                 "/files/0/x%2F..%2F..%2Fsecret.txt", f"/files/0/{secret}", f"/files/0/{urllib.parse.quote(secret)}",
                 "/files/0//etc/passwd", "/files/0/x/link.png", "/files/1/x/0.png", "/files/-1/x/0.png",
                 "/files/0/x/missing.png", "/thumb/100000", "/thumb/-1"]:  # fmt: skip
        status, data = server.get(path)
        assert status == 404, (path, status)
        assert b"not for the web" not in (data if isinstance(data, bytes) else json.dumps(data).encode())


def test_review_grid_filters_sorts_and_pages(reviewed):
    server = reviewed["server"]
    status, page = server.get("/api/rows?limit=7")
    assert status == 200 and page["total"] == 30 and len(page["rows"]) == 7
    probs = [r["heads"]["fine"]["prob"] for r in page["rows"]]
    assert probs == sorted(probs)  # lowest probability first: what to check first
    everything = server.get("/api/rows?limit=500&sort=prob_desc")[1]["rows"]
    assert [r["heads"]["fine"]["prob"] for r in everything] == sorted((r["heads"]["fine"]["prob"] for r in everything),
                                                                       reverse=True)  # fmt: skip
    second = server.get("/api/rows?limit=7&offset=7")[1]["rows"]
    assert not {r["id"] for r in second} & {r["id"] for r in page["rows"]}
    label = everything[0]["heads"]["fine"]["label"]
    same = server.get(f"/api/rows?head=fine&label={urllib.parse.quote(label)}&limit=500")[1]
    assert same["total"] == sum(r["heads"]["fine"]["label"] == label for r in everything)
    ranged = server.get("/api/rows?min_prob=0.3&max_prob=0.6&limit=500")[1]["rows"]
    assert all(0.3 <= r["heads"]["fine"]["prob"] <= 0.6 for r in ranged)
    by_path = [r["path"] for r in server.get("/api/rows?sort=path&limit=500")[1]["rows"]]
    assert by_path == sorted(by_path)
    status, thumb = server.get(f"/thumb/{everything[0]['id']}")
    assert status == 200 and Image.open(io.BytesIO(thumb)).format == "JPEG"
    gone = next(r for r in everything if r["path"] == "y/3.png")
    (reviewed["photos"] / "y" / "3.png").rename(reviewed["base"] / "moved.png")  # moved away after labelling
    status, answer = server.get(f"/thumb/{gone['id']}")
    assert status == 404 and "no longer where the labels file says" in answer["detail"]
    status, page = server.request("GET", "/no/such/page", headers={"Accept": "text/html"})
    assert status == 404 and b"Not found" in page and b"Traceback" not in page  # a page, not a stack trace
    assert server.get("/api/rows?head=style")[0] == 400
    assert server.get("/api/rows?sort=random")[0] == 400


def test_corrections_persist_through_sigkill_and_export_trains(reviewed, tmp_path, capsys, monkeypatch):
    server, labels, model = reviewed["server"], reviewed["labels"], reviewed["model"]
    info = server.get("/api/info")[1]
    rows = server.get("/api/rows?limit=500&sort=path")[1]["rows"]
    first, second, third = rows[0], rows[1], rows[2]
    other = next(n for n in info["names"]["fine"] if n != first["heads"]["fine"]["label"])
    status, row = server.post_json("/api/corrections", {"row": first["id"], "head": "fine", "label": other})
    assert status == 200
    assert row["heads"]["fine"]["label"] == other and row["heads"]["fine"]["status"] == "corrected"
    assert row["heads"]["coarse"]["label"] == info["parents"][other]  # a fine correction sets its parent
    assert server.post_json("/api/corrections", {"row": second["id"], "head": "fine", "action": "accept"})[0] == 200
    third_fine_parent = info["parents"][third["heads"]["fine"]["label"]]
    coarse_only = next(
        n for n in info["names"]["coarse"] if n not in (third["heads"]["coarse"]["label"], third_fine_parent)
    )
    status, row = server.post_json("/api/corrections", {"row": third["id"], "head": "coarse", "label": coarse_only})
    assert row["heads"]["fine"]["label"] == ""  # the old fine label is not in the new group: cleared
    assert server.post_json("/api/corrections", {"row": 100000, "head": "fine", "label": other})[0] == 404
    assert server.post_json("/api/corrections", {"row": first["id"], "head": "fine", "label": "Zebra"})[0] == 400
    done = server.get("/api/rows?status=done&limit=500")[1]
    assert {r["id"] for r in done["rows"]} == {first["id"], second["id"], third["id"]}

    server.stop(signal.SIGKILL)  # right after the acknowledged corrections
    db = labels.with_name("labels.corrections.sqlite")
    with sqlite3.connect(db) as con:
        history = con.execute("SELECT head, label, previous, action FROM corrections ORDER BY id").fetchall()
    assert (("fine", other, first["heads"]["fine"]["label"], "set") in history) and len(history) == 6
    restarted = ServerProcess("--model", str(model), "--labels", str(labels))
    reviewed["server"] = restarted
    again = {r["id"]: r for r in restarted.get("/api/rows?limit=500")[1]["rows"]}
    assert again[first["id"]]["heads"]["fine"]["label"] == other
    assert again[second["id"]]["heads"]["fine"]["status"] == "accepted"

    status, csv_bytes = restarted.get("/api/export")
    assert status == 200
    manifest = pd.read_csv(io.BytesIO(csv_bytes))
    assert list(manifest.columns[:7]) == ["path", "label", "x1", "y1", "x2", "y2", "split"]
    assert len(manifest) == 3 and set(manifest["split"]) <= {"train", "val"}
    assert set(manifest["label"]) == {other, second["heads"]["fine"]["label"], coarse_only}
    out = tmp_path / "manifest.csv"
    code, printed, _ = in_process(capsys, monkeypatch, "corrections", "export", "--db", str(db), "--out", str(out))
    assert code == 0 and "3 reviewed crops" in printed and pd.read_csv(out).equals(manifest)
    manifest.assign(split="train").to_csv(out, index=False)  # three rows: all of them train
    coarse = reviewed["coarse"]
    assert in_process(capsys, monkeypatch, "run", "--stage", "fine", "--run-dir", str(tmp_path / "retrained"),
                      f"init_from={coarse}", "data.format=csv", f"data.root={out}", "train.epochs=1",
                      "data.image_size=32")[0] == 0  # fmt: skip
    assert (tmp_path / "retrained" / "checkpoints" / "last.pt").is_file()


def test_an_ensemble_answers_the_mean_of_its_models(reviewed, other_fine):
    """Two models trained on other seeds, served alone and together: every probability the ensemble answers is
    the mean of the two models' (soft voting), to the 4 places the API gives."""
    photo = (reviewed["photos"] / "x" / "0.png").read_bytes()
    servers = [ServerProcess("--model", str(other_fine))]
    try:
        servers.append(ServerProcess("--model", str(reviewed["model"]), "--model", str(other_fine)))
        assert servers[1].get("/healthz")[1]["models"] == [str(reviewed["model"]), str(other_fine)]
        answers = [server.upload(photo) for server in (reviewed["server"], *servers)]
    finally:
        for server in servers:
            server.stop()
    assert [status for status, _ in answers] == [200, 200, 200]
    compared, apart = 0, 0.0
    for head in ("coarse", "fine"):
        a, b, ab = ({t["label"]: t["prob"] for t in found["regions"][0]["heads"][head]["top"]} for _, found in answers)
        for label in ab.keys() & a.keys() & b.keys():
            assert ab[label] == pytest.approx((a[label] + b[label]) / 2, abs=1.5e-4), (head, label)
            compared += 1
        apart = max(apart, *(abs(a[k] - b[k]) for k in a.keys() & b.keys()))
    assert compared >= 2 and apart > 0.01  # each head's likeliest labels compared; the two models do differ


def test_token_and_open_host_warning(reviewed):
    model = str(reviewed["model"])
    server = ServerProcess("--model", model, "--host", "0.0.0.0", "--token", "s3cret")
    try:
        assert server.get("/healthz")[1]["models"] == [model]
        assert server.get("/api/info")[0] == 401
        assert server.get("/review")[0] == 401
        assert server.get("/api/info?token=wrong")[0] == 401
        assert server.get("/api/info?token=s3cret")[0] == 200
        assert server.request("GET", "/api/info", headers={"Cookie": "hierarchy_token=s3cret"})[0] == 200
        assert server.get("/healthz")[0] == 200  # for monitors: says nothing about the photos
        status, answer = server.get("/api/rows?token=s3cret")
        assert status == 404 and "--labels" in answer["detail"]  # no labels file loaded: says how
    finally:
        out, err = server.stop()
    assert "anyone who can reach this machine" in err and "?token=s3cret" in out


def test_missing_inputs_fail_with_one_line(reviewed, tmp_path, capsys, monkeypatch):
    assert "labels file" in refused(capsys, monkeypatch, "serve", "--model", str(reviewed["model"]), "--labels",
                                    str(tmp_path / "nope.csv"))  # fmt: skip
    assert "no_run" in refused(capsys, monkeypatch, "serve", "--model", str(tmp_path / "no_run"))
    err = refused(capsys, monkeypatch, "corrections", "export", "--db", str(tmp_path / "none.sqlite"), "--out", "x.csv")
    assert "not found" in err
