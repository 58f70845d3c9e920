"""Fast paths: the engine that hoists GEMMs and fuses the gate math (engine.py), with the Numba
kernels on the CPU (numba_kernels.py) and our CUDA kernels on the GPU (scratchrnn/gpu/)."""
import numpy as np

from .engine import FastEngine


def make_engine(model):
    if model.device == "gpu":
        from ..gpu.modules import CudaKernels
        from ..gpu.ops import KernelOps
        return FastEngine(model, KernelOps(CudaKernels(model.dtype), model.xp), "fast (CUDA kernels)")
    from . import numba_kernels
    return FastEngine(model, numba_kernels, "fast (Numba)")


def use_host_cuda_kernels(model):
    """Run a CPU model with our CUDA kernels built for the host (g++) instead of Numba: the GPU's
    code and launch arithmetic, checked without a GPU."""
    from ..gpu.modules import HostKernels
    from ..gpu.ops import KernelOps
    model.engine = FastEngine(model, KernelOps(HostKernels(model.dtype), np), "fast (CUDA kernels on the host)")
    model.engine_name = model.engine.name
    return model
