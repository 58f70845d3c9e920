"""Fast paths: the engine that hoists GEMMs and fuses the gate math (engine.py), with the Numba
kernels on the CPU (numba_kernels.py) and our CUDA kernels on the GPU (scratchrnn/gpu/)."""
from .engine import FastEngine


def make_engine(model):
    if model.device == "gpu":
        from ..gpu.ops import CudaOps
        return FastEngine(model, CudaOps(model.xp, model.dtype), "fast (CUDA kernels)")
    from . import numba_kernels
    return FastEngine(model, numba_kernels, "fast (Numba)")
