import pytest
import torch
from conftest import make_image_folder
from PIL import Image

from hierarchy.config import DataConfig
from hierarchy.data import build_loader, build_splits, build_test, crop, fashion_mnist
from hierarchy.data.images import SkipLog
from hierarchy.data.transforms import augment_batch, letterbox
from hierarchy.errors import UserError
from hierarchy.taxonomy import load_taxonomy

TAX = load_taxonomy("fashion_mnist")


def test_fashion_mnist_splits_and_labels(fmnist_root):
    cfg = DataConfig(root=str(fmnist_root), image_size=32)
    train, val = build_splits(cfg, TAX, seed=0)
    assert (len(train), len(val)) == (360, 40)
    assert train.images.shape[1:] == (1, 32, 32) and train.images.dtype == torch.uint8
    assert torch.equal(train.coarse, torch.tensor(TAX.parents)[train.fine])
    # the same seed carves the same validation images
    assert torch.equal(build_splits(cfg, TAX, seed=0)[1].images, val.images)
    test = build_test(cfg, TAX)
    assert len(test) == 100
    limited, _ = build_splits(DataConfig(root=str(fmnist_root), limit=100), TAX, seed=0)
    assert len(limited) == 90


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load(str(tmp_path), "train", TAX, 32)


def test_corrupt_idx_file(tmp_path, fmnist_root):
    for f in fmnist_root.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(UserError, match="unreadable"):
        fashion_mnist.load(str(tmp_path), "train", TAX, 32)


def test_letterbox_keeps_aspect_ratio():
    image = Image.new("RGB", (100, 50), (255, 255, 255))
    out = letterbox(image, 32)
    assert out.shape == (3, 32, 32)
    assert out[:, 16, :].min() == 255  # the middle row is image
    assert out[:, 0, :].max() == 0 and out[:, -1, :].max() == 0  # top and bottom rows are padding
    crop = letterbox(Image.new("RGB", (100, 100), (9, 9, 9)), 16, box=(-5, 10, 50, 30))  # clipped box
    assert crop.shape == (3, 16, 16) and crop.max() == 9


def test_augment_is_seeded_and_bounded():
    images = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8)
    a = augment_batch(images, torch.Generator().manual_seed(3), erase=0.5)
    b = augment_batch(images, torch.Generator().manual_seed(3), erase=0.5)
    assert torch.equal(a, b) and a.shape == (4, 1, 32, 32) and 0 <= a.min() and a.max() <= 1


def test_image_folder_with_aliases_and_corrupt_file(tmp_path):
    root = make_image_folder(tmp_path / "imgs", ["sneakers", "Trouser", "bag", "shoe"], per_class=5)
    (root / "bag" / "broken.jpg").write_bytes(b"not an image at all")
    (root / "bag" / "empty.png").write_bytes(b"")
    cfg = DataConfig(format="folder", root=str(root), image_size=24, val_fraction=0.2)
    train, val = build_splits(cfg, TAX, seed=0)
    assert len(train) + len(val) == 22
    labels = {
        TAX.fine[f] if f >= 0 else "coarse:" + TAX.coarse[c]
        for f, c in zip(train.fine + val.fine, train.coarse + val.coarse)
    }
    assert labels == {"Sneaker", "Trouser", "Bag", "coarse:shoe"}  # 'shoe' is a group: fine label unknown (-1)
    skips = SkipLog()
    seen = 0
    for batch in build_loader(train, 8, workers=0):
        skips.add(batch.skipped)
        seen += len(batch.sources)
        assert batch.images.shape[1:] == (3, 24, 24)
    for batch in build_loader(val, 8, workers=0):
        skips.add(batch.skipped)
        seen += len(batch.sources)
    assert seen == 20 and len(skips) == 2
    assert {p.rsplit("/", 1)[1] for p in skips.reasons} == {"broken.jpg", "empty.png"}


def test_image_folder_unknown_label(tmp_path):
    root = make_image_folder(tmp_path / "imgs", ["Sneaker", "jackets"], per_class=1)
    with pytest.raises(UserError, match="label 'jackets' is not a class .* Valid fine names"):
        build_splits(DataConfig(format="folder", root=str(root)), TAX, seed=0)


def test_csv_manifest_with_boxes_and_splits(tmp_path):
    make_image_folder(tmp_path, ["a"], per_class=3, size=(60, 40))
    rows = [
        "path,label,x1,y1,x2,y2,split",
        "a/0.png,Coat,0,0,30,40,train",
        "a/1.png,4,,,,,train",
        "a/2.png,ankle boot,10,10,50,30,test",
    ]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    cfg = DataConfig(format="csv", root=str(tmp_path / "m.csv"), image_size=16, val_fraction=0.5)
    train, val = build_splits(cfg, TAX, seed=0)
    assert sorted(train.fine + val.fine) == [4, 4]
    test = build_test(cfg, TAX)
    assert test.fine == [9] and test.boxes == [(10.0, 10.0, 50.0, 30.0)]
    image, fine, coarse, _, _ = test[0]
    assert image.shape == (3, 16, 16) and (fine, coarse) == (9, TAX.parents[9])
    (tmp_path / "bad.csv").write_text("path,label\na/0.png,Jacket\n")
    with pytest.raises(UserError, match="bad.csv row 2: label 'Jacket'"):
        build_splits(DataConfig(format="csv", root=str(tmp_path / "bad.csv")), TAX, seed=0)


def test_huge_image_is_skipped_not_decoded(tmp_path):
    """A decompression bomb (over 120 megapixels) is refused before its pixels are decoded."""
    from hierarchy.data.images import ImageFiles

    Image.new("L", (11000, 11000)).save(tmp_path / "huge.png")  # 121 MP, compresses to a few kB
    Image.new("RGB", (30, 20), (200, 10, 10)).save(tmp_path / "ok.png")
    files = ImageFiles([str(tmp_path / "huge.png"), str(tmp_path / "ok.png")], [0, 1], [0, 1], 16)
    assert files[0][0] is None and "DecompressionBomb" in files[0][2]
    assert files[1][0].shape == (3, 16, 16)


def test_polygon_mask_and_annotation_crops(tmp_path):
    from hierarchy.data.crops import apply_crop_mode
    from hierarchy.data.images import ImageFiles

    Image.new("RGB", (40, 40), (200, 200, 200)).save(tmp_path / "g.png")
    triangle = [(0, 0), (39, 0), (0, 39)]
    files = ImageFiles([str(tmp_path / "g.png")] * 2, [4, 4], [TAX.parents[4]] * 2, 40, [None, (0, 0, 20, 40)])
    masked = ImageFiles(files.paths, files.fine, files.coarse, 40, None, polygons=[triangle, None])
    image = masked[0][0]
    assert image[:, 2, 2].tolist() == [200] * 3 and image[:, 37, 37].tolist() == [0] * 3  # outside: blanked
    assert masked[1][0][:, 37, 37].tolist() == [200] * 3
    crops = apply_crop_mode(files, "auto", None, TAX, "cpu")  # boxes present → annotation crops
    assert crops.tags == ["image", "annotation"] and crops[1][3].endswith("#annotation")
    assert crops[1][0][:, :, :10].sum() == 0  # the 20x40 box is padded to a square
    with pytest.raises(UserError, match="data.crop=person needs photo files"):
        crop(torch.zeros(1), DataConfig(crop="person"), TAX, None, "cpu")


def test_fine_label_fraction_keeps_every_coarse_label_and_a_share_of_each_fine_class(fmnist_root):
    full, _ = build_splits(DataConfig(root=str(fmnist_root), image_size=28), TAX, seed=0)
    cfg = DataConfig(root=str(fmnist_root), image_size=28, fine_label_fraction=0.2)
    train, val = build_splits(cfg, TAX, seed=0)
    assert torch.equal(train.coarse, full.coarse)  # every image keeps its coarse label
    kept = train.fine >= 0
    assert torch.equal(train.fine[kept], full.fine[kept])  # a kept fine label is the true one
    for c in range(10):
        assert int((kept & (full.fine == c)).sum()) == max(1, round(0.2 * int((full.fine == c).sum())))
    assert (val.fine >= 0).all()  # validation keeps its fine labels
    again, _ = build_splits(cfg, TAX, seed=0)
    assert torch.equal(again.fine, train.fine)  # seeded: the same share every run


def test_folders_and_csv_rows_named_by_a_coarse_class_give_coarse_only_samples(tmp_path):
    from hierarchy.data import csv_manifest

    root = make_image_folder(tmp_path / "mixed", ["Trouser", "tops", "shoe"], 2)  # fine, coarse alias, coarse
    train, _ = build_splits(DataConfig(format="folder", root=str(root), image_size=28, val_fraction=0), TAX, seed=0)
    by_label = {(f, c) for f, c in zip(train.fine, train.coarse)}
    trouser, top, shoe = TAX.lookup("Trouser", "fine"), TAX.lookup("top", "coarse"), TAX.lookup("shoe", "coarse")
    assert by_label == {(trouser, TAX.parents[trouser]), (-1, top), (-1, shoe)}
    manifest = tmp_path / "m.csv"
    trousers, shoes = next((root / "Trouser").iterdir()), next((root / "shoe").iterdir())
    manifest.write_text(f"path,label\n{trousers},Trouser\n{shoes},shoe\n")
    rows = csv_manifest.load(str(manifest), "train", TAX, 28, "label", "split")
    assert list(zip(rows.fine, rows.coarse)) == [(trouser, TAX.parents[trouser]), (-1, shoe)]


def test_coarse_only_samples_train_the_coarse_head_of_a_fine_model():
    """In the fine stage an image with only a coarse label stays in the training set, reaches the coarse loss
    (gradient on the coarse head, none on the fine head), and is drawn by a sampler balanced on the fine head."""
    from hierarchy.config import ModelConfig, TrainConfig
    from hierarchy.data import weighted_sampler
    from hierarchy.data.images import TensorImages
    from hierarchy.losses import compute_loss
    from hierarchy.models import build_model
    from hierarchy.uda import split_unlabelled

    fine = torch.tensor([1, -1, -1, 7])
    coarse = torch.tensor([TAX.parents[1], 0, 4, TAX.parents[7]])
    data = TensorImages(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), fine, coarse, "mixed")
    kept, pool = split_unlabelled(data, ["coarse", "fine"], TrainConfig(), 28)
    assert len(kept) == 4 and pool is None  # nothing is dropped for lacking a fine label
    model = build_model(ModelConfig(backbone="resnet10t", channels=[8, 16, 32, 64]), {"coarse": 6, "fine": 10})
    logits = model(torch.randn(2, 3, 28, 28))
    loss = compute_loss(logits, {"coarse": coarse[1:3], "fine": fine[1:3]}, TrainConfig())  # coarse-only rows
    loss.backward()
    assert model.heads["coarse"].weight.grad.abs().sum() > 0
    assert model.heads["fine"].weight.grad is None or model.heads["fine"].weight.grad.abs().sum() == 0
    draws = list(weighted_sampler(data, ("fine", 10), 0.0, 4000, torch.Generator().manual_seed(0)))
    assert {1, 2} <= set(draws)  # coarse-only samples are drawn too (at the mean weight of the labelled ones)


def test_fine_share_gives_the_few_fine_labels_their_share_of_the_draws():
    """train.fine_share: 10 fine-labelled samples among 100 get half the draws, class-balanced among themselves
    when train.balance names the fine head; every coarse-only sample is still drawn."""
    from hierarchy.data import weighted_sampler
    from hierarchy.data.images import TensorImages

    fine = torch.full((100,), -1)
    fine[:10] = torch.tensor([0] * 8 + [2] * 2)  # 8 : 2 among the fine-labelled
    data = TensorImages(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), fine, torch.zeros(100), "mixed")
    draws = torch.tensor(list(weighted_sampler(data, None, 0.5, 20_000, torch.Generator().manual_seed(0))))
    assert abs((draws < 10).float().mean() - 0.5) < 0.02
    assert set(range(10, 100)) <= set(draws.tolist())
    plain = torch.tensor(list(weighted_sampler(data, None, 0.0, 20_000, torch.Generator().manual_seed(0))))
    assert abs((plain < 10).float().mean() - 0.1) < 0.02  # no share asked: every sample equally
    both = torch.tensor(list(weighted_sampler(data, ("fine", 3), 0.5, 20_000, torch.Generator().manual_seed(0))))
    labelled = fine[both[both < 10]]
    assert abs((labelled == 2).float().mean() - 0.5) < 0.03  # the rare class as often as the common one


def test_photos_decode_ahead_in_threads_in_order_with_reasons(tmp_path):
    """Threads decode photos in batches, in the order given; unreadable files come back with their reason."""
    from hierarchy.image_files import Item, decoded_batches

    items = []
    for n in range(11):
        path = tmp_path / f"{n:02d}.jpg"
        Image.new("RGB", (40 + n, 30), (n * 20, 0, 0)).save(path)
        items.append(Item(str(tmp_path), path.name, str(path)))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    items.insert(5, Item(str(tmp_path), "broken.jpg", str(tmp_path / "broken.jpg")))
    items.append(Item(str(tmp_path), "gone.jpg", str(tmp_path / "gone.jpg")))
    by_threads = list(decoded_batches(items, 0, 4, threads=2))
    assert [len(b) for b in by_threads] == [4, 4, 4, 1]
    flat = [row for batch in by_threads for row in batch]
    assert [row[0] for row in flat] == items
    assert [row[1].width for row in flat if row[1] is not None] == [40 + n for n in range(11)]
    broken, gone = flat[5], flat[-1]
    assert broken[1] is None and "cannot identify image file" in broken[3]
    assert gone[1] is None and "No such file" in gone[3]
    in_caller = [row for batch in decoded_batches(items, 0, 4, threads=0) for row in batch]
    assert [(r[0], r[2], r[3]) for r in in_caller] == [(r[0], r[2], r[3]) for r in flat]


def test_large_jpeg_decodes_reduced_at_its_own_aspect(tmp_path):
    """A 1920x1080 frame wanted at 640 px decodes at 960x540 (DCT scaling), with the scale back to full size."""
    from hierarchy.image_files import open_image

    Image.new("RGB", (1920, 1080), (90, 120, 30)).save(tmp_path / "frame.jpg")
    image, scale = open_image(str(tmp_path / "frame.jpg"), max_side=640)
    assert image.size == (960, 540) and scale == 2.0
    image, scale = open_image(str(tmp_path / "frame.jpg"), max_side=1280)  # under 2x: decoded whole
    assert image.size == (1920, 1080) and scale == 1.0
