"""Engines: how a model's forward, backward and update are computed. Three, behind one interface:

    reference.py   the readable NumPy/CuPy cells of scratchrnn/cells/, layer after layer: the source of truth
    fast.py        the same mathematics arranged for speed: hoisted GEMMs, preallocated workspaces, and the
                   step functions' fused twins: Numba on the CPU (numba_kernels.py), our CUDA C on the GPU
                   (scratchrnn/kernels/, launched by scratchrnn/gpu/); the tests hold it to the reference
    split.py       'fast-split', the CPU only: the fast engine on two cores, each training chunk's batch in two
                   halves, one computed by a worker process; parameters in shared memory

An engine is made for one model (it reads the model's parameters and fills its gradients) and has:

    forward(X, state)                  -> logits (T*B, V), final state        forward only: validation, generation
    loss_and_grad(X, Y, state, dstate, masks, state_grad)
                                       -> mean loss (0-d array), final state, dL/d(initial state)
                                          fills model.grads; dstate: a gradient reaching the final state
                                          (None: zero, which is what truncated BPTT means); masks: the
                                          chunk's dropout masks (L, T, B, nh), or None (dropout.py);
                                          state_grad False: dL/d(initial state) is not wanted (training
                                          detaches the state) and None comes back in its place; the fast
                                          engine then skips each layer's last product dA_1 W_hh^T
    update(optimizer, lr, theta)       -> the gradient norm before clipping (0-d array); clips the gradient at
                                          theta and updates the parameters in place (optimizers/)
    threads_change_sums(then, now, batch_size)
                                       -> whether training minibatches of batch_size on `then` BLAS threads and
                                          on `now` adds up its sums in other orders (other last bits: a
                                          resume's note, cli.note_other_sums)

X, Y are (T, B) token ids on the model's device; a state is a list over layers of the cell's STATE tuple.
"""
import numpy as np

from ..errors import ConfigError
from .clipping import clipping_threshold

ENGINES = ("reference", "fast", "fast-split")
__all__ = ["ENGINES", "clipping_threshold", "make_engine", "use_host_cuda_kernels"]


def make_engine(model, engine):
    """The engine named `engine` for this model, on the model's device."""
    if engine == "reference":
        from .reference import ReferenceEngine
        return ReferenceEngine(model)
    if engine not in ("fast", "fast-split"):
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    from .fast import FastEngine
    if model.device == "gpu":
        if engine == "fast-split":
            raise ConfigError("the fast-split engine runs on the CPU only; on a GPU use the fast engine")
        from ..gpu.modules import CudaKernels
        from ..gpu.ops import KernelOps
        return FastEngine(model, KernelOps(CudaKernels(model.dtype), model.xp), "fast (CUDA kernels)")
    from . import numba_kernels
    fast = FastEngine(model, numba_kernels, "fast (Numba)")
    if engine == "fast-split":
        from .split import SplitEngine
        return SplitEngine(model, fast)
    return fast


def use_host_cuda_kernels(model):
    """Run a CPU model with our CUDA kernels built for the host (g++) instead of Numba: the GPU's
    code and launch arithmetic, checked without a GPU."""
    from ..gpu.modules import HostKernels
    from ..gpu.ops import KernelOps
    from .fast import FastEngine
    model.engine = FastEngine(model, KernelOps(HostKernels(model.dtype), np), "fast (CUDA kernels on the host)")
    return model
