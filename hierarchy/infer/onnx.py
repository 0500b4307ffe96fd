"""A run as an ONNX model for serving without our training code, and labelling with it (onnxruntime).

``hierarchy export --model RUN --format onnx`` writes ``<name>.onnx`` and ``<name>.json`` into ``--out``:

- The ONNX graph takes ``images``: uint8 (B, 3, S, S), RGB, each photo or crop letterboxed to S×S (long side
  resized to S, centred on black padding, as ``hierarchy.data.transforms.letterbox`` does), any batch size. Inside
  are the ImageNet normalisation, the test-time views ``hierarchy label`` uses by default for this model (or the
  ``--views`` asked for; their logits averaged), the temperatures and the hierarchy decoding, all in fp32, so the
  graph answers as ``hierarchy label --model RUN`` does at its default precision. Outputs: one probability
  matrix per head, named by the head (``coarse`` (B, C), ``fine`` (B, F), or attribute heads), in the class
  order of the JSON's taxonomy.
- The JSON holds the taxonomy, heads, input size and layout, normalisation, temperatures, test-time views,
  decoding rule, multi-label thresholds, and the run's settings (crop mode, stage one's detector settings).

``hierarchy label --model model.onnx`` runs the graph with onnxruntime (``OnnxClassifier``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import from_dict
from hierarchy.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PAD_VALUE, to_model_input
from hierarchy.errors import UserError
from hierarchy.infer.classifier import forward, letterboxed, model_from_checkpoint, resolve_views
from hierarchy.infer.decode import decode_hierarchy, scaled
from hierarchy.taxonomy import build_taxonomy

log = logging.getLogger(__name__)
FORMAT = 1
OPSET = 18


class Servable(nn.Module):
    """A checkpoint's network with everything inference adds: normalisation, test-time views, temperatures,
    hierarchy decoding. uint8 images in, one probability matrix per head out."""

    def __init__(self, state: dict[str, Any], views: tuple[bool, int]) -> None:
        super().__init__()
        self.cfg, self.views = from_dict(state["config"]), views
        self.network = (
            model_from_checkpoint(state, torch.device("cpu")).eval().to(memory_format=torch.contiguous_format)
        )
        self.taxonomy = build_taxonomy(state["taxonomy"], source=state.get("path", "checkpoint"))
        self.heads, self.temperatures = list(state["heads"]), dict(state.get("temperatures", {}))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = to_model_input(images, channels_last=False)
        logits = forward(self.network, x, *self.views)
        probs = decode_hierarchy(scaled(logits, self.temperatures), self.taxonomy, self.cfg.hierarchy.rule,
                                 self.cfg.train.multilabel)  # fmt: skip
        return tuple(probs[h] for h in self.heads)


def export_onnx(model: str | Path, out: str | Path, views: str = "", tta_shift: int | None = None) -> tuple[Path, Path]:
    """Write ``<out>/<run name>.onnx`` and its ``.json``, with the test-time views ``hierarchy label`` would use
    (``views`` and ``tta_shift`` as in ``resolve_views``; "" = the labelling default). Returns both paths."""
    state = load_checkpoint(model)
    cfg = from_dict(state["config"])
    flip, shift = resolve_views(cfg, views, tta_shift)
    servable = Servable(state, (flip, shift)).eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(state["path"]).parent.parent.name or "model"
    onnx_path, json_path = out / f"{name}.onnx", out / f"{name}.json"
    side = cfg.data.image_size
    example = torch.full((2, 3, side, side), PAD_VALUE, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad():
        torch.onnx.export(servable, (example,), onnx_path, input_names=["images"], output_names=servable.heads,
                          dynamic_shapes={"images": {0: batch}}, dynamo=True, opset_version=OPSET, external_data=False,
                          verbose=False)  # fmt: skip
    meta = {
        "format": FORMAT,
        "source": state["path"],
        "heads": servable.heads,
        "taxonomy": state["taxonomy"],
        "input": {"name": "images", "dtype": "uint8", "shape": ["batch", 3, side, side], "channels": "RGB",
                  "letterbox": f"long side resized to {side}, centred, padded with {PAD_VALUE}"},
        "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "applied": "inside the graph"},
        "views": {"tta_flip": flip, "tta_shift": shift, "applied": "inside the graph"},
        "temperatures": servable.temperatures,
        "rule": cfg.hierarchy.rule,
        "multilabel": cfg.train.multilabel,
        "thresholds": state.get("thresholds"),
        "config": state["config"],
    }  # fmt: skip
    json_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    log.info("exported %s → %s (%.1f MB) and %s", state["path"], onnx_path, onnx_path.stat().st_size / 1e6, json_path)
    return onnx_path, json_path


class OnnxClassifier:
    """An exported model under onnxruntime (a ``Classifier``: see classifier.py)."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime

        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise UserError(f"{path} needs its {meta_path.name} beside it: both come from `hierarchy export`")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format", 0) > FORMAT:
            raise UserError(f"{meta_path} has format {meta['format']}; this version reads up to {FORMAT}: upgrade")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # truncated or not an ONNX file
            raise UserError(f"cannot load {path} with onnxruntime: {exc}") from None
        self.source = str(path)
        self.taxonomy = build_taxonomy(meta["taxonomy"], source=str(meta_path))
        self.heads = list(meta["heads"])
        self.config = from_dict(meta["config"])
        self.input_size = self.config.data.image_size
        self.multilabel = bool(meta["multilabel"])
        self.thresholds = torch.tensor(meta["thresholds"]) if meta.get("thresholds") else None
        self.device = torch.device("cpu")

    def probabilities(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Probabilities per head for one uint8 batch (B, 3, S, S) (a list of one, as ``TorchClassifiers`` takes)."""
        outputs = self.session.run(self.heads, {"images": inputs[0].contiguous().numpy()})
        return {h: torch.from_numpy(v) for h, v in zip(self.heads, outputs)}

    def crops(self, images: list, boxes: list) -> dict[str, torch.Tensor]:
        return self.probabilities([letterboxed(images, boxes, self.input_size)])
