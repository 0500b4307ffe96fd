"""Classifiers: the one code path from crops to probabilities for ``hierarchy eval``, ``label``, ``serve`` and the
ONNX export.

- ``Classifier``: what every implementation offers (``TorchClassifiers`` here, ``OnnxClassifier`` in onnx.py);
  ``load_classifier`` (load.py) picks one.
- ``TorchClassifiers``: one or more checkpoints of one taxonomy, their probabilities averaged (soft voting).
- ``forward``: logits averaged over the test-time views (mirror image, one-pixel shifts); ``resolve_views`` says
  which views a command uses, the same way for every command and for the export.
- Inference precision is its own choice (``label.precision``): fp32 unless bf16 is asked for, never the
  training setting, so one model gives one answer on every path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import Config, from_dict
from hierarchy.data.images import Batch, SkipLog
from hierarchy.data.transforms import letterbox, to_model_input
from hierarchy.errors import UserError
from hierarchy.infer.decode import decode_model
from hierarchy.models import build_model
from hierarchy.runner import autocast
from hierarchy.taxonomy import Taxonomy, build_taxonomy


def shifted_views(x: torch.Tensor, shift: int) -> list[torch.Tensor]:
    """``x`` (model input) and, with ``shift`` > 0, its copies moved ``shift`` pixels left, right, up and down.

    The uncovered border is black, as in the letterbox padding and the training shifts (replicating the edge
    scored lower on validation; benchmarks/results/fashion_mnist.md).
    """
    if shift <= 0:
        return [x]
    h, w = x.shape[-2:]
    black = to_model_input(torch.zeros(1, 3, 1, 1, device=x.device), channels_last=False).to(x.dtype)
    padded = F.pad(x - black, (shift, shift, shift, shift)) + black
    offsets = ((0, 0), (0, -shift), (0, shift), (-shift, 0), (shift, 0))
    return [padded[..., shift + dy : shift + dy + h, shift + dx : shift + dx + w] for dy, dx in offsets]


def forward(model: nn.Module, x: torch.Tensor, tta_flip: bool, tta_shift: int = 0) -> dict[str, torch.Tensor]:
    """Logits per head, averaged over the test-time views: with ``tta_flip`` the mirrored image (garments are
    left-right symmetric), with ``tta_shift`` copies shifted by that many pixels (small images, where one
    pixel of framing moves the prediction)."""
    views = shifted_views(x, tta_shift)
    if tta_flip:
        views += [v.flip(-1) for v in views]
    outs = [model(v) for v in views]
    if len(outs) == 1:
        return outs[0]
    return {head: sum(out[head].float() for out in outs) / len(outs) for head in outs[0]}


def over_loader(loader, outputs: Callable[[Batch], dict[str, torch.Tensor]], skips: SkipLog | None = None):
    """``outputs(batch)`` for every readable batch, joined: ``({head: (N, K)}, {head: (N,)} targets, sources)``."""
    found: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    sources: list[str] = []
    for batch in loader:
        if skips is not None:
            skips.add(batch.skipped)
        if not batch.sources:
            continue
        for head, value in outputs(batch).items():
            found.setdefault(head, []).append(value)
        for head, value in batch.targets.items():
            targets.setdefault(head, []).append(value)
        sources += batch.sources
    return {k: torch.cat(v) for k, v in found.items()}, {k: torch.cat(v) for k, v in targets.items()}, sources


@torch.no_grad()
def predict(
    model: nn.Module,
    loader,
    device: torch.device,
    amp: bool = True,
    channels_last: bool = True,
    skips: SkipLog | None = None,
    tta_flip: bool = False,
    tta_shift: int = 0,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Logits of one network for every readable image: ``({head: (N, K)}, {head: (N,)} targets, sources)``."""
    model.eval()

    def logits(batch: Batch) -> dict[str, torch.Tensor]:
        x = to_model_input(batch.images.to(device, non_blocking=True), channels_last)
        with autocast(device, amp):
            return {head: value.float().cpu() for head, value in forward(model, x, tta_flip, tta_shift).items()}

    return over_loader(loader, logits, skips)


def model_from_checkpoint(state: dict[str, Any], device: torch.device) -> nn.Module:
    """Rebuild the network a checkpoint was trained with (no pretrained weights: the checkpoint has them all)."""
    cfg = from_dict(state["config"])
    cfg.model.pretrained, cfg.model.weights = False, ""
    model = build_model(cfg.model, state["heads"])
    model.load_state_dict(state["model"])
    return model.to(device).to(memory_format=torch.channels_last)


PRECISIONS = ("fp32", "bf16")
VIEWS = ("one", "model")


def resolve_views(cfg: Config, views: str = "", tta_shift: int | None = None) -> tuple[bool, int]:
    """The test-time views ``(mirror, shift in pixels)`` a command uses for a model with settings ``cfg``.

    ``views``: "model" (the views it is evaluated with, ``model.tta_flip`` / ``model.tta_shift``), "one" (the crop
    as it is) or "" (the labelling default: what its owner set in ``label.views``, else one). ``tta_shift``, when
    given, replaces the shifted views. ``label``, ``serve`` and ``export`` resolve their views here, so an exported
    model answers as ``label`` does with the same choice.
    """
    if tta_shift is not None and tta_shift < 0:
        raise UserError(f"tta_shift={tta_shift}: a shift is 0 or more pixels")
    if (views or cfg.label.views or "one") == "one":
        flip, shift = False, 0
    else:
        flip, shift = cfg.model.tta_flip, cfg.model.tta_shift
    return flip, shift if tta_shift is None else tta_shift


class Classifier(Protocol):
    """What ``Labeler``, the web app and ``hierarchy label`` need of a model, whatever runs it.

    ``config`` is the (first) model's saved settings: its crop mode, stage-one settings and decoding rule;
    ``input_size`` the largest input side among its models; ``source`` where it was loaded from, for messages.
    """

    taxonomy: Taxonomy
    heads: list[str]
    multilabel: bool
    thresholds: torch.Tensor | None  # (n_fine,) for a multi-label model, else None
    device: torch.device
    config: Config
    input_size: int
    source: str

    def crops(self, images: list[Image.Image], boxes: list) -> dict[str, torch.Tensor]:
        """Probabilities per head ``{head: (N, K)}`` for crops ``(image, box in its pixels, or None for all)``."""
        ...


class TorchClassifiers:
    """One or more checkpoints of the same taxonomy and heads; probabilities averaged across them (soft voting).

    Each model keeps its own input size and decoding rule (its saved config); the test-time views and the
    precision are the caller's (``views``/``tta_shift`` as in ``resolve_views``; ``precision`` "fp32" or "bf16",
    bf16 autocast only where the hardware has it natively).
    """

    def __init__(
        self, states: list[dict[str, Any]], device: torch.device, views: str = "model", tta_shift: int | None = None,
        precision: str = "fp32",
    ) -> None:  # fmt: skip
        if precision not in PRECISIONS:
            raise UserError(f"precision {precision!r}: choose one of {list(PRECISIONS)}")
        self.states, self.device, self.precision = states, device, precision
        self.source = str(states[0].get("path", "checkpoint"))
        self.taxonomy = build_taxonomy(states[0]["taxonomy"], source=self.source)
        self.heads = list(states[0]["heads"])
        for state in states[1:]:
            if state["taxonomy"] != states[0]["taxonomy"] or list(state["heads"]) != self.heads:
                raise UserError(
                    f"{state['path']} and {self.source} differ in taxonomy or heads: an ensemble "
                    "needs models of one taxonomy and stage"
                )
        self.configs: list[Config] = [from_dict(s["config"]) for s in states]
        self.config = self.configs[0]
        self.input_size = max(c.data.image_size for c in self.configs)
        self.views = [resolve_views(c, views, tta_shift) for c in self.configs]
        if len({c.train.multilabel for c in self.configs}) > 1:
            raise UserError("an ensemble needs all multi-label or all single-label models, not a mix")
        self.multilabel = self.config.train.multilabel
        # Multi-label styles: a style is given when its averaged probability reaches the averaged threshold.
        self.thresholds = (
            torch.tensor([s["thresholds"] for s in states]).mean(0)
            if self.multilabel and all("thresholds" in s for s in states)
            else None
        )
        self.models = [model_from_checkpoint(s, device).eval() for s in states]

    @classmethod
    def load(cls, paths: list[str], device: torch.device, **options) -> TorchClassifiers:
        """Checkpoints or run folders; ``options`` as for the constructor."""
        return cls([load_checkpoint(p) for p in paths], device, **options)

    def logits(self, k: int, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model ``k``'s logits per head for a uint8 batch (B, 3, S, S), averaged over its test-time views."""
        x = to_model_input(batch.to(self.device, non_blocking=True), self.configs[k].model.channels_last)
        with torch.no_grad(), autocast(self.device, self.precision == "bf16"):
            return {h: v.float() for h, v in forward(self.models[k], x, *self.views[k]).items()}

    def decode(self, k: int, logits: dict[str, torch.Tensor], calibrated: bool = True) -> dict[str, torch.Tensor]:
        """Model ``k``'s probabilities from its logits: its temperatures (when fitted and ``calibrated``), then
        its hierarchy rule."""
        temperatures = self.states[k].get("temperatures", {}) if calibrated else {}
        return decode_model(logits, self.taxonomy, self.configs[k], temperatures)

    def probabilities(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Averaged probabilities per head for one batch, given each model's uint8 input (B, 3, S, S)."""
        total: dict[str, torch.Tensor] = {}
        for k, batch in enumerate(inputs):
            probs = self.decode(k, self.logits(k, batch))
            for head in self.heads:
                total[head] = total.get(head, 0) + probs[head].cpu() / len(self.models)
        return total

    def crops(self, images: list[Image.Image], boxes: list) -> dict[str, torch.Tensor]:
        """Probabilities per head for crops ``(image, box in that image's pixels or None for all of it)``."""
        return self.probabilities([letterboxed(images, boxes, cfg.data.image_size) for cfg in self.configs])

    def dataset_logits(self, loader, skips: SkipLog | None = None) -> tuple[dict, dict, list[str]]:
        """The first model's logits for every readable sample of a loader (for evaluation and calibration)."""
        return over_loader(loader, lambda batch: {h: v.cpu() for h, v in self.logits(0, batch.images).items()}, skips)


def letterboxed(images: list[Image.Image], boxes: list, size: int) -> torch.Tensor:
    """uint8 (N, 3, size, size): each image's box (or all of it, for None) letterboxed to the model's input."""
    return torch.stack([letterbox(image, size, box) for image, box in zip(images, boxes)])
