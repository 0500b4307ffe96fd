"""Training precision by measurement: the probe leaves the run untouched, the verdict is remembered, an emulated
bf16 is refused, and a run's checkpoint says what it trained in."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from hierarchy import precision as prec
from hierarchy.config import load_config
from hierarchy.models import build_model
from hierarchy.runner import native_bf16

CPU = torch.device("cpu")


def small_model() -> torch.nn.Module:
    cfg = load_config("coarse")
    cfg.model.channels = [8, 16, 32, 64]
    return build_model(cfg.model, {"coarse": 6, "fine": 10})


def test_fp32_when_not_asked_for():
    chosen = prec.choose_precision(small_model(), CPU, 8, 28, True, requested=False)
    assert not chosen.bf16 and chosen.speedup is None and "train.amp=false" in chosen.reason


def test_timing_leaves_weights_statistics_and_random_draws_alone():
    model = small_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    fp32_s, bf16_s = prec.time_steps(model, CPU, 16, 28, True)
    assert fp32_s > 0 and bf16_s > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # incl. BN running stats
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters())


def test_verdict_is_measured_once_and_remembered(tmp_path, monkeypatch):
    monkeypatch.setattr(prec, "CACHE", tmp_path / "precision.json")
    timed = []
    real = prec.time_steps
    monkeypatch.setattr(prec, "time_steps", lambda *a: timed.append(1) or real(*a))
    model = small_model()
    first = prec.choose_precision(model, CPU, 16, 28, True, requested=True)
    second = prec.choose_precision(model, CPU, 16, 28, True, requested=True)
    assert first == second
    if not native_bf16(CPU):  # nothing to measure: bf16 would be emulated
        assert not first.bf16 and "without native bf16" in first.reason and not timed
        return
    assert len(timed) == 1 and first.speedup > 0
    assert first.bf16 == (first.speedup >= prec.MIN_GAIN)
    cached = json.loads((tmp_path / "precision.json").read_text())
    assert list(cached.values()) == [first.to_dict()]
    other_batch = prec.choose_precision(model, CPU, 32, 28, True, requested=True)  # another key: measured anew
    assert len(timed) == 2 and other_batch.speedup > 0


def test_emulated_bf16_is_refused(tmp_path):
    """With oneDNN capped below bf16 (a CPU without native bf16 kernels), bf16 autocast is measured slower and the
    default network trains in fp32, even where the CPU's flags say bf16."""
    code = (
        "import torch; from hierarchy import precision as p; from hierarchy.config import load_config;"
        "from hierarchy.models import build_model; from pathlib import Path; p.CACHE = Path(r'%s');"
        "m = build_model(load_config('coarse').model, {'coarse': 6});"
        "c = p.choose_precision(m, torch.device('cpu'), 256, 28, True, True); print(c.bf16, c.speedup, c.reason)"
    ) % (tmp_path / "precision.json")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False"), out.stdout


def test_the_checkpoint_records_the_precision(tiny_runs):
    state = torch.load(tiny_runs / "coarse" / "checkpoints" / "last.pt", weights_only=True)
    chosen = prec.restored(state["precision"])
    assert isinstance(chosen.bf16, bool) and chosen.reason
    assert chosen.bf16 == (chosen.speedup is not None and chosen.speedup >= prec.MIN_GAIN)
