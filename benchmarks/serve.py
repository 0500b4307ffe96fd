"""`hierarchy serve` under use: one-photo latency, review pages on small and large labels files, and eight
reviewers correcting at once — each against what a user would do without it, in one run on one machine.

1. One photo: latency of ``POST /api/predict`` (median, p95 of sequential requests to a running server) against
   ``hierarchy label PHOTO`` on the same photo (a process per photo: start-up and model loading included).
2. Review grid: labels files of 1,000 and 100,000 rows; the server's start (to ``/healthz``), then the time to
   the first page, the next page, a filtered page and the last page (60 rows each; median of repeats).
3. Sustained use: 8 client threads correcting random rows for 60 s; corrections per second, latency, and the
   database counted afterwards: every acknowledged correction there once, none lost, none twice.
Also saves screenshots of the pages (headless Chromium, when installed): serve_photo.png (a product shot),
serve_photo_people.png (a street photo, people found by stage one), serve_review.png, serve_label.png (the Label
page mid-session, after a Train on my answers).

The model is the README's default job (the newest artifacts/fine run) unless --model says otherwise; the photos
are Fashion-MNIST test images written as PNG files, labelled by that model.

Usage: python benchmarks/serve.py [--model RUN] [--seconds 60] [--quick]
Writes benchmarks/results/serve.{json,md} (+ screenshots).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import hierarchy_cmd, save_results  # noqa: E402
from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from benchmarks.serve_process import ServerProcess  # noqa: E402
from hierarchy.data.fashion_mnist import find_file, read_idx  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.paths import newest_run  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FINDINGS = "## Findings"
PAGE = 60
PEOPLE = Path(str(resources.files("ultralytics") / "assets" / "bus.jpg"))  # a street photo that ships offline


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    out = call()
    return (time.perf_counter() - start) * 1000, out


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def write_photos(folder: Path, n: int) -> list[Path]:
    """The first ``n`` Fashion-MNIST test images as 112 px PNG files (four times the stored 28 px)."""
    images = read_idx(find_file("t10k-images-idx3-ubyte", "")).numpy()  # (10000, 28, 28) uint8
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"item{i:05d}.png"
        Image.fromarray(images[i]).resize((112, 112), Image.BICUBIC).save(path)
        paths.append(path)
    return paths


def grown_labels(labels: pd.DataFrame, rows: int, out: Path) -> Path:
    """A labels file of ``rows`` rows from a smaller one: its rows repeated with boxes shifted a pixel at a time,
    so every row is a crop of its own (as a detector's output has many crops per photo)."""
    reps = -(-rows // len(labels))
    big = pd.concat([labels] * reps, ignore_index=True).iloc[:rows].copy()
    shift = np.repeat(np.arange(reps), len(labels))[:rows] % 50
    big["kind"] = "person"
    big["x1"], big["y1"] = shift * 1.0, shift * 1.0
    big["x2"], big["y2"] = 112.0 - shift * 0.5, 112.0 - shift * 0.5
    big.to_parquet(out)
    return out


def one_photo(model: str, photo: Path, work: Path, requests: int, cli_runs: int) -> dict:
    """Server latency per photo against one ``hierarchy label`` process per photo."""
    cli = []
    for k in range(cli_runs):
        start = time.perf_counter()
        subprocess.run(hierarchy_cmd("label", str(photo), "--model", model, "--out", str(work / f"one{k}.csv")),
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        cli.append((time.perf_counter() - start) * 1000)
    server = ServerProcess("--model", model, "--db", str(work / "latency.sqlite"), threads=None)
    try:
        data = photo.read_bytes()
        for _ in range(3):
            server.upload(data)  # warm-up: first allocations, thread pools
        times = [timed(lambda: server.upload(data))[0] for _ in range(requests)]
    finally:
        server.stop()
    return {"server_median_ms": percentile(times, 50), "server_p95_ms": percentile(times, 95),
            "cli_median_ms": percentile(cli, 50), "cli_runs": cli_runs, "requests": requests}  # fmt: skip


def review_pages(model: str, labels: Path, work: Path, repeats: int) -> dict:
    """Start-up and page times of the review grid on one labels file."""
    start = time.perf_counter()
    server = ServerProcess("--model", model, "--labels", str(labels), "--db", str(work / f"{labels.stem}.sqlite"),
                           threads=None)  # fmt: skip
    started = (time.perf_counter() - start) * 1000
    try:
        total = server.get(f"/api/rows?limit={PAGE}")[1]["total"]
        label = server.get("/api/rows?limit=1&sort=prob_desc")[1]["rows"][0]["heads"]["fine"]["label"]
        pages = {
            "first": f"/api/rows?limit={PAGE}",
            "next": f"/api/rows?limit={PAGE}&offset={PAGE}",
            "filtered": f"/api/rows?limit={PAGE}&label={urllib.parse.quote(label)}&max_prob=0.9&sort=prob_desc",
            "last": f"/api/rows?limit={PAGE}&offset={max(0, total - PAGE)}&sort=path",
        }
        out = {"rows": total, "start_ms": round(started)}
        for name, path in pages.items():
            times = []
            for _ in range(repeats):
                ms, (status, _) = timed(lambda p=path: server.get(p))
                assert status == 200, (path, status)
                times.append(ms)
            out[f"{name}_ms"] = percentile(times, 50)
    finally:
        server.stop()
    return out


def correcting(model: str, labels: Path, work: Path, clients: int, seconds: float) -> dict:
    """``clients`` threads correcting random rows' fine labels for ``seconds``; then the database is counted."""
    db = work / "concurrent.sqlite"
    server = ServerProcess("--model", model, "--labels", str(labels), "--db", str(db), threads=None)
    names = server.get("/api/info")[1]["names"]["fine"]
    rows = server.get("/healthz")[1]["rows"]
    acked: list[list[float]] = [[] for _ in range(clients)]
    failed = [0] * clients
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        rng = random.Random(k)
        while time.perf_counter() < stop_at:
            change = {"row": rng.randrange(rows), "head": "fine", "label": rng.choice(names), "action": "set"}
            ms, (status, _) = timed(lambda c=change: server.post_json("/api/corrections", c))
            if status == 200:
                acked[k].append(ms)
            else:
                failed[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT COUNT(*) FROM corrections WHERE head = 'fine'").fetchone()[0]
    latencies = [ms for per in acked for ms in per]
    return {"clients": clients, "seconds": seconds, "acknowledged": len(latencies), "failed": sum(failed),
            "stored_fine_rows": stored, "lost": max(0, len(latencies) - stored),
            "duplicated": max(0, stored - len(latencies)), "per_s": round(len(latencies) / seconds, 1),
            "median_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}  # fmt: skip


def screenshots(model: str, labels: Path, photo: Path, work: Path) -> list[str]:
    """The two pages at 1440x900 in headless Chromium, after a realistic action on each. The server runs stage one
    on uploads (``--crop person``): a product shot has no person and is classified whole; the street photo shows
    its people as regions (classified by the Fashion-MNIST model, so their labels mean little)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        print("no chromium/chromedriver: screenshots skipped (apt-get install chromium chromium-driver)")
        return []
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1440,900"):
        options.add_argument(arg)
    options.binary_location = chromium
    server = ServerProcess("--model", model, "--labels", str(labels), "--db", str(work / "shots.sqlite"), "--crop",
                           "person", threads=None)  # fmt: skip
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    base = f"http://127.0.0.1:{server.port}"
    saved = []
    try:
        driver.get(base + "/")
        driver.find_element(By.ID, "file-input").send_keys(str(photo))
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#regions .region"))
        time.sleep(0.5)
        driver.save_screenshot(str(RESULTS / "serve_photo.png"))
        driver.find_element(By.ID, "file-input").send_keys(str(PEOPLE))
        people = "#regions .region[data-kind=person]"
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, people))
        time.sleep(0.5)
        driver.save_screenshot(str(RESULTS / "serve_photo_people.png"))
        driver.get(base + "/review")
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .card")) >= 12)
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("2")  # the first card: the model's second choice, a correction as a reviewer makes it
        time.sleep(1.0)  # thumbnails load lazily
        driver.save_screenshot(str(RESULTS / "serve_review.png"))
        saved = ["serve_photo.png", "serve_photo_people.png", "serve_review.png", label_screenshot(driver, model, work)]
    finally:
        driver.quit()
        server.stop()
    return saved


def label_screenshot(driver, model: str, work: Path) -> str:
    """The Label page at 1280x900 mid-session: a pool of 28 px Fashion-MNIST test images, a dozen questions answered
    truly (from the test labels) with the keys, a short Train on my answers, then more until a "no" brings its
    choose on screen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    images = read_idx(find_file("t10k-images-idx3-ubyte", "")).numpy()
    truth = read_idx(find_file("t10k-labels-idx1-ubyte", "")).numpy()
    pool = work / "pool28"
    pool.mkdir(parents=True, exist_ok=True)
    for i in range(200):
        Image.fromarray(images[i]).save(pool / f"item{i:05d}.png")
    server = ServerProcess("--model", model, "--pool", str(pool), "--db", str(work / "label_shot.sqlite"),
                           "queue.retrain_min_steps=20", "queue.retrain_max_steps=20", threads=None)  # fmt: skip
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900,
                                                                  "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
    wait = WebDriverWait(driver, 600)
    page = lambda script: driver.execute_script(f"return window.hx.label.{script}")  # noqa: E731

    def answer_truly() -> None:
        q, info, before = page("state.current"), page("state.info"), page("state.seq")
        fine = info["names"]["fine"][truth[int(Path(q["name"]).stem[4:])]]  # the taxonomy's order is the labels'
        body = driver.find_element(By.TAG_NAME, "body")
        if q["kind"] == "confirm":
            body.send_keys("y" if q["shown"][0] == fine else "n")
        elif q["kind"] == "coarse":
            body.send_keys(str(q["shown"].index(info["parents"][fine]) + 1))
        elif fine in q["shown"]:
            body.send_keys(str(q["shown"].index(fine) + 1))
        else:  # none of these: type it
            body.send_keys("0")
            wait.until(lambda d: d.find_element(By.ID, "typeahead-input").is_displayed())
            driver.find_element(By.ID, "typeahead-input").send_keys(fine, Keys.ENTER)
        wait.until(lambda d: page("state.seq") > before)
        time.sleep(0.3)

    try:
        driver.get(f"http://127.0.0.1:{server.port}/label")
        wait.until(lambda d: page("state.current"))
        for _ in range(12):
            answer_truly()
        driver.find_element(By.TAG_NAME, "body").send_keys("t")
        # accepted or kept aside (the answers held back decide): the page says which
        wait.until(lambda d: re.match(r"v001 (is now current|kept aside)", d.find_element(By.ID, "retrain-state").text))
        for _ in range(40):
            if page("state.after") and len(page("state.current.shown")) > 1:  # a "no", then a choose among a few
                break
            answer_truly()
        time.sleep(1.0)
        driver.save_screenshot(str(RESULTS / "serve_label.png"))
    finally:
        server.stop()
    return "serve_label.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run folder (default: the newest artifacts/fine run)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the concurrent-corrections test")
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs, to check the script")
    args = parser.parse_args()
    model = args.model or str(newest_run("fine") or "")
    if not model:
        raise SystemExit("no fine run under artifacts/fine: run the README's first command, or pass --model RUN")
    sizes = (1_000, 5_000) if args.quick else (1_000, 100_000)
    seconds = 5.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = write_photos(work / "photos", 50 if args.quick else 200)
        labels = work / "labels.parquet"
        subprocess.run(hierarchy_cmd("label", str(work / "photos"), "--model", model, "--out", str(labels)),
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        results = {"cpu": cpu_kind(), "model": model, "date": time.strftime("%Y-%m-%d")}
        results["one_photo"] = one_photo(model, photos[0], work, 20 if args.quick else 100, 2 if args.quick else 3)
        small = pd.read_parquet(labels)
        results["review"] = [
            review_pages(model, grown_labels(small, n, work / f"labels_{n}.parquet"), work, 5 if args.quick else 11)
            for n in sizes
        ]
        results["concurrent"] = correcting(model, labels, work, 8, seconds)
        results["screenshots"] = screenshots(model, labels, photos[0], work)
    report(results, "serve_quick" if args.quick else "serve")


def report(results: dict, name: str) -> None:
    one = results["one_photo"]
    t1 = format_table([
        {"way": "POST /api/predict to a running server", "median_ms": one["server_median_ms"],
         "p95_ms": one["server_p95_ms"], "runs": one["requests"]},
        {"way": "hierarchy label PHOTO (a process per photo)", "median_ms": one["cli_median_ms"], "p95_ms": "",
         "runs": one["cli_runs"]},
    ], ["way", "median_ms", "p95_ms", "runs"])  # fmt: skip
    t2 = format_table(results["review"], ["rows", "start_ms", "first_ms", "next_ms", "filtered_ms", "last_ms"])
    c = results["concurrent"]
    t3 = format_table([c], ["clients", "seconds", "acknowledged", "per_s", "median_ms", "p95_ms", "failed",
                            "stored_fine_rows", "lost", "duplicated"])  # fmt: skip
    text = (
        f"CPU: {results['cpu']}. Model: `{results['model']}`.\n\n### One photo\n\n{t1}\n\n"
        f"### Review grid (60 rows a page; start = process start to /healthz, model and labels file loaded)\n\n"
        f"{t2}\n\n### Eight reviewers correcting at once\n\n{t3}\n"
    )
    if results.get("screenshots"):
        text += "\n" + "\n".join(f"![{s}]({s})" for s in results["screenshots"]) + "\n"
    print(text)
    save_results(name, "hierarchy serve: latency, review pages, concurrent corrections", results, text, FINDINGS)
    print(json.dumps(results["concurrent"]))


if __name__ == "__main__":
    main()
