"""What every test file shares: tiny generated fixtures (Fashion-MNIST-format idx files, image folders, real photos,
tiny trained runs) and the helpers that run the real commands. CPU only, no network. Test files import the helpers
from here (``from conftest import hierarchy``), never from one another."""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm would spend ~45 s retrying a hub it cannot reach
ROOT = Path(__file__).resolve().parent.parent


def class_pattern(label: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A learnable grey image per class: a bright bar whose position and angle depend on the label."""
    img = rng.integers(0, 40, (size, size)).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size]
    angle = label * np.pi / 10
    dist = np.abs((x - size / 2) * np.cos(angle) + (y - size / 2) * np.sin(angle) - (label - 5) * 1.5)
    img += 200 * (dist < 3)
    return img.clip(0, 255).astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_fashion_mnist(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = np.stack([class_pattern(int(k), rng) for k in labels])
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def fmnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 training and 100 test images in the Fashion-MNIST file format."""
    return make_fashion_mnist(tmp_path_factory.mktemp("fmnist"), 400, 100)


def make_image_folder(root: Path, labels: list[str], per_class: int, size: tuple[int, int] = (40, 56)) -> Path:
    rng = np.random.default_rng(1)
    for k, label in enumerate(labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            grey = class_pattern(k % 10, rng, 28)
            Image.fromarray(grey).convert("RGB").resize(size).save(root / label / f"{i}.png")
    return root


def tiny_overrides(root: Path, epochs: int = 1) -> list[str]:
    """Settings for a fast CPU run on the idx fixture."""
    return [f"data.root={root}", f"train.epochs={epochs}", "train.batch_size=32", "data.image_size=32"]


def hierarchy(*args: str, check: bool = True, threads: int = 0) -> subprocess.CompletedProcess:
    """``python -m hierarchy ARGS`` in a real process; with ``check``, a non-zero exit fails with its output;
    ``threads`` > 0 caps its threads (processes that may run side by side must not fight over the cores)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    proc = subprocess.run([sys.executable, "-m", "hierarchy", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def in_process(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """The real command run by this process's ``hierarchy.cli.main`` (no interpreter start-up: ~4 s saved);
    returns (exit status, stdout, stderr). Log lines go to pytest's log capture, not stderr."""
    from hierarchy.cli import main

    monkeypatch.chdir(ROOT)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """Run a command that must stop at a user error; check it exits with status 2 and no traceback; return stderr."""
    code, _, err = in_process(capsys, monkeypatch, *args)
    assert code == 2 and "Traceback" not in err, err
    return err


def hierarchy_here(*args: str) -> None:
    """``hierarchy ARGS`` by this process's ``hierarchy.cli.main``, for fixtures (which cannot take ``capsys``): the
    runs and labels files tests then read, without an interpreter start-up (seconds each); a failure fails it. Log
    records of INFO and up reach the run's train.log, as in a process of its own."""
    from hierarchy.cli import main

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        code = main(list(args))
    finally:
        root.setLevel(level)
    if code != 0:
        raise AssertionError(f"hierarchy {' '.join(args)} failed")


def labelled_folder(base: Path, model: Path, per_class: int, out_name: str) -> tuple[Path, Path]:
    """Photos of two classes under ``base/photos`` and their labels file ``base/out_name``, by ``model``."""
    photos = make_image_folder(base / "photos", ["x", "y"], per_class)
    labels = base / out_name
    hierarchy_here("label", str(photos), "--model", str(model), "--out", str(labels))
    return photos, labels


def package_dir(name: str) -> Path:
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


BUS, ZIDANE = package_dir("ultralytics") / "assets" / "bus.jpg", package_dir("ultralytics") / "assets" / "zidane.jpg"
NO_PEOPLE = package_dir("sklearn") / "datasets" / "images" / "china.jpg"  # a temple roof, nobody in it


def make_photo_folder(root: Path) -> Path:
    """Real photos (flipped, cropped, recoloured copies) in label folders, plus one photo with nobody in it."""
    bus, zidane = Image.open(BUS).convert("RGB"), Image.open(ZIDANE).convert("RGB")
    variants = {
        "street": [bus, bus.transpose(Image.FLIP_LEFT_RIGHT), bus.crop((0, 300, 810, 1000)).resize((405, 350))],
        "classic": [zidane, zidane.transpose(Image.FLIP_LEFT_RIGHT), zidane.convert("L").convert("RGB")],
    }
    for label, images in variants.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            image.thumbnail((640, 640))
            image.save(root / label / f"{i}.jpg", quality=90)
    Image.open(NO_PEOPLE).save(root / "street" / "nobody.jpg")
    return root


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def folder_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny coarse run and the fine run started from it, trained on a generated image folder whose folder names
    are aliases; shared by the labeler and web-app tests, which only read them."""
    base = tmp_path_factory.mktemp("folder_runs")
    train = make_image_folder(base / "train", ["tshirt_top", "Trouser", "Bag"], 12)
    common = [f"data.root={train}", "data.format=folder", "train.epochs=1", "train.batch_size=16", "data.image_size=32"]
    hierarchy_here("run", "--stage", "coarse", "--run-dir", str(base / "coarse"), *common)
    hierarchy_here("run", "--stage", "fine", "--run-dir", str(base / "fine"), f"init_from={base / 'coarse'}", *common)
    return {"coarse": base / "coarse", "fine": base / "fine", "train": train}


@pytest.fixture(scope="session")
def other_fine(folder_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second fine run like ``folder_runs["fine"]`` (same coarse run, same images) on another seed: a model that
    gives other probabilities, for the tests of ensembles."""
    run = tmp_path_factory.mktemp("other_fine") / "fine"
    hierarchy_here("run", "--stage", "fine", "--run-dir", str(run), f"init_from={folder_runs['coarse']}",
                   "train.seed=1", f"data.root={folder_runs['train']}", "data.format=folder", "train.epochs=1",
                   "train.batch_size=16", "data.image_size=32")  # fmt: skip
    return run


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A coarse run and a fine run from it, one epoch each on 48 generated images: the quickest real run folders,
    for the quick tests of what refuses them."""
    base = tmp_path_factory.mktemp("tiny_runs")
    common = [*tiny_overrides(make_fashion_mnist(base / "fmnist", 60, 10)), "data.val_fraction=0.2"]
    hierarchy_here("run", "--stage", "coarse", "--run-dir", str(base / "coarse"), *common)
    hierarchy_here("run", "--stage", "fine", "--run-dir", str(base / "fine"), f"init_from={base / 'coarse'}", *common)
    return base


@pytest.fixture(scope="session")
def coarse_and_fine(fmnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One coarse run and one fine run from it on the idx fixture (validation split, temperatures fitted), shared
    by the tests of the commands that read runs; they may rewrite reports, never the weights."""
    base = tmp_path_factory.mktemp("runs")
    hierarchy_here("run", "--stage", "coarse", "--run-dir", str(base / "coarse"), *tiny_overrides(fmnist_root, 2))
    hierarchy_here("run", "--stage", "fine", "--run-dir", str(base / "fine"), f"init_from={base / 'coarse'}",
                   "train.freeze_backbone_epochs=1", *tiny_overrides(fmnist_root, 2))  # fmt: skip
    return base


CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Debian's, driven by Selenium) for the page tests, one per test module."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and DRIVER):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: apt-get install chromium "
                    "chromium-driver (bash .ci/setup does)")  # fmt: skip
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
