"""Image transforms: decode + letterbox per image (in loader workers), augment per batch (on the device).

Augmenting whole batches with one ``affine_grid``/``grid_sample`` call costs a few milliseconds per
batch on a CPU and nothing on a GPU, where per-image PIL transforms would take a core of their own.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from hierarchy.image_files import to_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_VALUE = 0  # black padding: Fashion-MNIST backgrounds are black, and zero stays zero under the affine warp


def mask_outside(image: Image.Image, polygon: list[tuple[float, float]]) -> Image.Image:
    """Blank (PAD_VALUE) every pixel outside the polygon: the garment without its background."""
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in polygon], fill=255)
    canvas = Image.new("RGB", image.size, (PAD_VALUE,) * 3)
    canvas.paste(image, mask=mask)
    return canvas


def letterbox(image: Image.Image, size: int, box: tuple[float, float, float, float] | None = None) -> torch.Tensor:
    """Crop (optionally), keep the aspect ratio, resize the long side to ``size`` and pad to a square.

    Args:
        image: A decoded, upright RGB image (see open_image).
        size: Side of the square output.
        box: Optional crop ``(x1, y1, x2, y2)`` in the image's pixels, clipped to the image.

    Returns:
        uint8 tensor (3, size, size).
    """
    image = to_rgb(image)
    if box is not None:
        x1, y1, x2, y2 = box
        x1, y1 = max(0, int(x1)), max(0, int(y1))
        x2, y2 = min(image.width, math.ceil(x2)), min(image.height, math.ceil(y2))
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise ValueError(f"box {box} is empty inside a {image.width}x{image.height} image")
        image = image.crop((x1, y1, x2, y2))
    scale = size / max(image.width, image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    image = image.resize((w, h), Image.BILINEAR, reducing_gap=3.0)  # reducing_gap: fast, still alias-free
    canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
    canvas.paste(image, ((size - w) // 2, (size - h) // 2))
    return torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 batch (N, C, H, W) of square images to (N, C, size, size) in chunks (bounded memory)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(images), 4096):
        chunk = images[i : i + 4096].float()
        out[i : i + 4096] = (
            F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True).round().clamp(0, 255)
        )
    return out


def to_model_input(images: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 or [0,1] float (B, 1|3, H, W) → ImageNet-normalised float (B, 3, H, W)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator,
    flip: float = 0.5,
    rotate: float = 8.0,
    translate: float = 0.08,
    scale: float = 0.08,
    jitter: float = 0.2,
    erase: float = 0.0,
) -> torch.Tensor:
    """Random flip, rotation, shift, zoom, brightness/contrast and erasing for a whole batch.

    Args:
        images: uint8 (B, C, H, W) on any device.
        generator: A CPU generator, seeded per epoch so a resumed run draws the same augmentations.

    Returns:
        float (B, C, H, W) in [0, 1].
    """
    x = images.float() / 255.0
    b = x.shape[0]

    def uniform(*shape: int) -> torch.Tensor:  # in [-1, 1), drawn on the CPU for device-independent results
        return (torch.rand(*shape, generator=generator) * 2 - 1).to(x.device)

    angle = uniform(b) * math.radians(rotate)
    zoom = 1 + uniform(b) * scale
    mirror = torch.where(torch.rand(b, generator=generator) < flip, -1.0, 1.0).to(x.device)
    theta = torch.zeros(b, 2, 3, device=x.device)
    # Inverse map from output to input coordinates: rotate, scale and (via the x sign) mirror.
    theta[:, 0, 0] = torch.cos(angle) / zoom * mirror
    theta[:, 0, 1] = -torch.sin(angle) / zoom
    theta[:, 1, 0] = torch.sin(angle) / zoom * mirror
    theta[:, 1, 1] = torch.cos(angle) / zoom
    theta[:, :, 2] = uniform(b, 2) * translate * 2  # grid coordinates span [-1, 1], i.e. 2 per image side
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    if jitter > 0:
        brightness = 1 + uniform(b, 1, 1, 1) * jitter
        contrast = 1 + uniform(b, 1, 1, 1) * jitter
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * brightness
    if erase > 0:
        x = _random_erase(x, generator, erase)
    return x.clamp(0, 1)


def _random_erase(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """Zero one random rectangle (2–25 % of the area, aspect 0.3–3.3) in a share ``p`` of the images."""
    b, _, h, w = x.shape
    area = (0.02 + torch.rand(b, generator=generator) * 0.23) * h * w
    aspect = torch.exp((torch.rand(b, generator=generator) * 2 - 1) * math.log(3.3))
    eh = (area * aspect).sqrt().clamp(1, h).long()
    ew = (area / aspect).sqrt().clamp(1, w).long()
    top = (torch.rand(b, generator=generator) * (h - eh + 1)).long()
    left = (torch.rand(b, generator=generator) * (w - ew + 1)).long()
    apply = torch.rand(b, generator=generator) < p
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    in_rows = (rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))  # (B, H, 1)
    in_cols = (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1))  # (B, 1, W)
    mask = in_rows & in_cols & apply.view(b, 1, 1)  # (B, H, W)
    return x.masked_fill(mask.unsqueeze(1).to(x.device), 0.0)


def cutmix(
    images: torch.Tensor, generator: torch.Generator, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Paste one random box from a shuffled copy of the batch into every image (Yun et al., 2019).

    Args:
        images: float (B, C, H, W).
        generator: The epoch's CPU generator (a resumed run draws the same boxes).
        alpha: The kept area ``lam`` is drawn from Beta(alpha, alpha).

    Returns:
        (mixed images, permutation, lam): the loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``, with
        ``lam`` the exact share of each image that is still its own after clipping the box to the image.
    """
    b, _, h, w = images.shape
    seed = int(torch.randint(2**31, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(b, generator=generator).to(images.device)
    cut_h, cut_w = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    cy, cx = (int(torch.randint(n, (1,), generator=generator)) for n in (h, w))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[perm, :, top:bottom, left:right]
    return mixed, perm, 1 - (bottom - top) * (right - left) / (h * w)
