"""One-photo predictions for the web page: uploads checked and decoded, then labelled by one worker thread that
takes every request waiting at that moment as one batch (the detector and the classifiers run once for all).

The models are loaded once per process (the ``Labeler``); the thread owns them, so requests never run torch
concurrently and fight over the CPU's threads.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import warnings
from concurrent.futures import Future
from dataclasses import dataclass

from PIL import Image

from hierarchy.detect import Region
from hierarchy.errors import UserError
from hierarchy.image_files import open_image
from hierarchy.infer.labeler import Labeler
from hierarchy.infer.rows import head_answers, head_columns

log = logging.getLogger(__name__)
MAX_WAIT_S = 0.005  # how long the worker waits for more requests to join a batch it has started
MAX_BATCH = 16  # photos per batch


class TooLarge(UserError):
    """An upload over the byte or pixel limit (HTTP 413)."""


def decode_upload(data: bytes, max_pixels: int, max_side: int) -> tuple[Image.Image, float]:
    """An uploaded file as an upright RGB photo ``(image, scale to full size)``; the pixel count is read from the
    header and checked before anything is decoded (a decompression bomb is a small file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides, below
            width, height = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError:
        raise TooLarge(f"the image has too many pixels (over {max_pixels:,}); send a smaller one") from None
    except Exception:
        raise UserError("the file is not an image PIL can read (JPEG, PNG, WebP, BMP, TIFF, GIF)") from None
    if width * height > max_pixels:
        raise TooLarge(f"the image is {width}x{height} pixels, over the limit of {max_pixels:,}; send a smaller one")
    try:
        return open_image(io.BytesIO(data), max_side)
    except Exception as exc:  # a truncated or corrupt file whose header looked fine
        raise UserError(f"the image could not be decoded ({type(exc).__name__}): is the file complete?") from None


@dataclass
class Request:
    image: Image.Image
    scale: float
    box: tuple[float, float, float, float] | None  # full-size pixels: classify this crop only
    result: Future


class Predictor:
    """Batches concurrent one-photo requests onto the ``Labeler``; ``predict`` is safe to call from any thread."""

    def __init__(self, labeler: Labeler) -> None:
        self.labeler = labeler
        self.requests: queue.Queue[Request | None] = queue.Queue()
        self.photos, self.batches = 0, 0  # photos and batches so far (shown by /healthz)
        self.worker = threading.Thread(target=self.serve, name="predictor", daemon=True)
        self.worker.start()

    def submit(self, image: Image.Image, scale: float, box=None) -> Future:
        """Queue one photo (and optionally the crop to classify); the future gives ``regions`` (see ``regions``)."""
        request = Request(image, scale, box, Future())
        self.requests.put(request)
        return request.result

    def close(self) -> None:
        self.requests.put(None)
        self.worker.join(timeout=10)

    def serve(self) -> None:
        while True:
            first = self.requests.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    more = self.requests.get(timeout=MAX_WAIT_S)
                except queue.Empty:
                    break
                if more is None:
                    self.requests.put(None)  # stop after this batch
                    break
                batch.append(more)
            try:
                answers = self.run(batch)
            except Exception as exc:  # a failure answers this batch's requests and leaves the server running
                log.exception("prediction failed")
                for request in batch:
                    request.result.set_exception(exc)
                continue
            for request, answer in zip(batch, answers):
                request.result.set_result(answer)

    def run(self, batch: list[Request]) -> list[list[dict]]:
        """Regions and their heads for every request of a batch, in one detector call and one classifier pass."""
        self.photos, self.batches = self.photos + len(batch), self.batches + 1
        images, scales = [r.image for r in batch], [r.scale for r in batch]
        chosen = [r.box is not None for r in batch]
        to_detect = [n for n, c in enumerate(chosen) if not c]
        detected = self.labeler.regions([images[n] for n in to_detect], [scales[n] for n in to_detect])
        found: list[list[Region]] = [[] for _ in batch]
        for n, regions in zip(to_detect, detected):
            found[n] = regions
        for n, request in enumerate(batch):
            if request.box is not None:
                found[n] = [Region("manual", request.box, 1.0)]
        crops, probs = self.labeler.classify(images, scales, found)
        answers: list[list[dict]] = [[] for _ in batch]
        for j, (n, region) in enumerate(crops):
            row = head_columns(probs, j, self.labeler.classifiers.taxonomy)
            answers[n].append({**region.to_dict(), "heads": head_answers(row, self.labeler.classifiers.heads)})
        return answers
