"""Fashion-MNIST from local files: Debian's dataset-fashion-mnist, torchvision's raw layout, or data.root."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch

from hierarchy.data.images import TensorImages, label_ids
from hierarchy.data.transforms import resize_square
from hierarchy.errors import UserError
from hierarchy.taxonomy import Taxonomy

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW_TO_GET = (
    "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu, files land in "
    f"{DEBIAN_DIR}), or download the four idx files from https://github.com/zalandoresearch/fashion-mnist "
    "(or with torchvision.datasets.FashionMNIST(root, download=True)) and set data.root=DIR."
)


def candidate_dirs(root: str) -> list[Path]:
    """Where to look, in order: data.root (and its torchvision sub-folders), then the Debian location."""
    dirs = []
    if root:
        base = Path(root).expanduser()
        dirs += [base, base / "raw", base / "FashionMNIST" / "raw"]
    else:
        dirs.append(DEBIAN_DIR)
    return dirs


def find_file(stem: str, root: str) -> Path:
    for folder in candidate_dirs(root):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    looked = ", ".join(str(d) for d in candidate_dirs(root))
    raise UserError(f"Fashion-MNIST file {stem}[.gz] not found (looked in {looked}). {HOW_TO_GET}")


def read_idx(path: Path) -> torch.Tensor:
    """Parse an IDX file (optionally gzipped): magic 0x0000 08 ndim, ndim big-endian sizes, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        if data[:2] != b"\x00\x00" or data[2] != 8:
            raise ValueError("not an IDX file of unsigned bytes")
        ndim = data[3]
        dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise UserError(f"Fashion-MNIST file {path} is unreadable ({exc}). {HOW_TO_GET}") from None


def load(root: str, split: str, taxonomy: Taxonomy, image_size: int) -> TensorImages:
    """The 60k training or 10k test split, resized once to ``image_size`` and kept in memory."""
    images_file, labels_file = (find_file(stem, root) for stem in FILES["test" if split == "test" else "train"])
    images, labels = read_idx(images_file), read_idx(labels_file).long()
    if images.ndim != 3 or len(images) != len(labels):
        raise UserError(f"Fashion-MNIST files {images_file} and {labels_file} do not match. {HOW_TO_GET}")
    # The taxonomy maps the data set's label ids through aliases "0".."9", never by position.
    fine_of_label = torch.tensor([label_ids(taxonomy, str(i))[0] for i in range(10)])
    if (fine_of_label < 0).any():
        raise UserError(
            f"taxonomy '{taxonomy.name}' must map the labels 0..9 to fine classes; use data.taxonomy=fashion_mnist"
        )
    labels = fine_of_label[labels]
    images = resize_square(images.unsqueeze(1), image_size)  # (N, 1, S, S): grey; expanded to RGB per batch
    parents = torch.tensor(taxonomy.parents)
    return TensorImages(images, labels, parents[labels], name=f"fashion_mnist/{split}")
