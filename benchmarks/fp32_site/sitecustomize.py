"""Make a CPU with native bf16 (AVX512-BF16 / AMX) behave like one without, for benchmarks of the fp32 kind.

Put this folder on PYTHONPATH (``benchmarks/label_throughput.py --emulate-fp32`` does) and every Python process
started from there sees no native bf16: torch's checks answer False (so our mixed precision stays off, as on
an fp32 machine), oneDNN may not use AMX or bf16 instructions, and OpenVINO compiles every model at f32
precision instead of its bf16 default on AMX CPUs. It is an approximation of an fp32 machine: clock, caches
and the AVX-512 units stay this machine's.
"""

import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")
os.environ["HIERARCHY_FP32_EMULATED"] = "1"  # benchmarks' cpu_kind() reports the emulated kind

import torch  # noqa: E402

torch.cpu._is_avx512_bf16_supported = lambda: False
torch.cpu._is_amx_tile_supported = lambda: False

try:
    import openvino
except ImportError:
    openvino = None

if openvino is not None:
    _compile = openvino.Core.compile_model

    def compile_model(self, model, device_name=None, config=None, **kwargs):
        return _compile(self, model, device_name, {**(config or {}), "INFERENCE_PRECISION_HINT": "f32"}, **kwargs)

    openvino.Core.compile_model = compile_model
