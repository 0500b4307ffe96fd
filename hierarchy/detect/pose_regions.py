"""Garment regions from a person's pose: hat, top, bottom and shoe boxes placed by the COCO keypoints."""

from __future__ import annotations

import numpy as np

GARMENT_REGIONS = ("hat", "top", "bottom", "shoe")  # what pose keypoints can locate
Box = tuple[float, float, float, float]

# COCO keypoint indices
NOSE, EYES, EARS = 0, (1, 2), (3, 4)
SHOULDERS, ELBOWS, WRISTS, HIPS, KNEES, ANKLES = (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)


def garment_regions(person: np.ndarray, keypoints: np.ndarray, min_conf: float) -> dict[str, Box]:
    """Hat, top, bottom and shoe boxes from one person's 17 COCO keypoints ``(x, y, visibility)``.

    A region is produced only when the keypoints that define it are visible (confidence ≥ ``min_conf``),
    and every region is clipped to the person's box. Sizes scale with the body (shoulder width, leg
    length), so they hold for near and distant people alike.
    """
    seen = keypoints[:, 2] >= min_conf
    xy = keypoints[:, :2]

    def visible(indices) -> np.ndarray:
        picked = [i for i in indices if seen[i]]
        return xy[picked] if picked else np.empty((0, 2))

    px1, py1, px2, py2 = map(float, person)
    regions: dict[str, tuple[float, float, float, float]] = {}
    shoulders, hips = visible(SHOULDERS), visible(HIPS)
    shoulder_w = float(np.ptp(shoulders[:, 0])) if len(shoulders) == 2 else 0.25 * (px2 - px1)
    torso = float(hips[:, 1].mean() - shoulders[:, 1].mean()) if len(shoulders) and len(hips) else 0.0

    head = visible((NOSE, *EYES, *EARS))
    if len(head):
        width = max(np.ptp(head[:, 0]) * 1.6, 0.6 * shoulder_w, 4.0)
        cx, eye_y = float(head[:, 0].mean()), float(head[:, 1].min())
        regions["hat"] = (cx - 0.65 * width, eye_y - 1.0 * width, cx + 0.65 * width, eye_y + 0.1 * width)
    if len(shoulders) and len(hips) and torso > 0:
        arms = np.concatenate([shoulders, hips, visible(ELBOWS)])
        pad = 0.12 * max(np.ptp(arms[:, 0]), torso)
        top_y = float(shoulders[:, 1].mean())
        regions["top"] = (arms[:, 0].min() - pad, top_y - 0.2 * torso, arms[:, 0].max() + pad, top_y + 1.1 * torso)
    legs = visible((*KNEES, *ANKLES))
    if len(hips) and len(legs):
        points = np.concatenate([hips, legs])
        length = float(points[:, 1].max() - hips[:, 1].mean())
        if length > 0:
            pad = 0.1 * max(np.ptp(points[:, 0]), 0.5 * length)
            hip_y = float(hips[:, 1].mean())
            bottom = (points[:, 0].min() - pad, hip_y - 0.1 * length, points[:, 0].max() + pad, points[:, 1].max())
            regions["bottom"] = (*bottom[:3], bottom[3] + 0.05 * length)
    ankles = visible(ANKLES)
    if len(ankles):
        knees = visible(KNEES)
        shin = float(ankles[:, 1].mean() - knees[:, 1].mean()) if len(knees) else 0.25 * (py2 - py1)
        size = max(0.45 * shin, 4.0)
        regions["shoe"] = (
            ankles[:, 0].min() - 0.6 * size,
            ankles[:, 1].min() - 0.35 * size,
            ankles[:, 0].max() + 0.6 * size,
            ankles[:, 1].max() + 0.55 * size,
        )
    clipped = {}
    for kind, (x1, y1, x2, y2) in regions.items():
        box = (max(px1, float(x1)), max(py1, float(y1)), min(px2, float(x2)), min(py2, float(y2)))
        if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:  # a region squeezed to nothing by the clip is dropped
            clipped[kind] = box
    return clipped
