"""The one loader of a ``Classifier``: checkpoints and run folders run under torch, an exported ``.onnx`` file
under onnxruntime."""

from __future__ import annotations

import torch

from hierarchy.errors import UserError
from hierarchy.infer.classifier import Classifier, TorchClassifiers
from hierarchy.infer.onnx import OnnxClassifier


def load_classifier(
    paths: list[str], device: torch.device, views: str = "", tta_shift: int | None = None, precision: str = "fp32"
) -> Classifier:
    """``TorchClassifiers`` for checkpoints and run folders (several: soft voting; ``views`` and ``tta_shift`` as in
    ``resolve_views``, "" = the labelling default), ``OnnxClassifier`` for one exported ``.onnx`` file (its views
    were chosen when it was exported; it always runs in fp32)."""
    onnx = [p for p in paths if str(p).endswith(".onnx")]
    if not onnx:
        return TorchClassifiers.load(paths, device, views=views, tta_shift=tta_shift, precision=precision)
    if len(paths) > 1:
        raise UserError("an exported .onnx model labels alone: give one --model, or ensemble the run folders")
    if views or tta_shift is not None:
        raise UserError("an exported model's test-time views are fixed: export again with --views / --tta-shift")
    if precision != "fp32":
        raise UserError("an exported model runs in fp32: leave label.precision at fp32 for a .onnx model")
    return OnnxClassifier(onnx[0])
