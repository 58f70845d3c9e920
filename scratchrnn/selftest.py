"""GPU self-test: python -m scratchrnn.selftest --device gpu

1. every CUDA kernel, launched through ops.py, on the same inputs as its twin: a cell's step kernels
   against the cell's NumPy step function, each optimiser's update kernel against its NumPy update, the
   others against their Numba twins;
2. full training steps of the deep LSTM and a GRU with the CUDA engine against the CPU reference;
3. the float64 finite-difference gradient check run on the device;
4. tokens/s of the book's deep LSTM training step (2 x 256, batch 32, 35 steps, clipping, SGD),
   beside PyTorch's cuDNN LSTM on the same GPU when torch with CUDA is installed.

`--device cpu` runs the same checks with the kernels built for the host (g++, no GPU needed): it is how
CI exercises this very file.
"""
import inspect
import sys
import time

import numpy as np

from .backend import device_name, get_array_module, resolve_device
from .cells import CELLS, step_options, step_shapes
from .cmdline import EXIT_ERROR, DefaultsHelpFormatter, OneLineParser, add_selftest_arguments
from .engines import numba_kernels
from .errors import ScratchRNNError
from .gradcheck import check_model, relative_error
from .model import RNNLM
from .train import detach

TOL = {"float32": 1e-5, "float64": 1e-12}

# Sizes of the kernel checks: B batch, nh hidden (B * nh crosses a block of 256), ROWS = T*B, V vocabulary.
B, nh, ROWS, V = 7, 300, 45, 28
# The kernels that are not a cell's step or an update: their arguments as (role, shape), role in / out / inout /
# ids; checked against their Numba twins, which the tests hold to NumPy.
OTHER_KERNELS = {
    "gather_rows_bias": [("in", (V, 4 * nh)), ("ids", (ROWS,)), ("in", (4 * nh,)), ("out", (ROWS, 4 * nh))],
    "scatter_add_rows": [("inout", (V, 4 * nh)), ("ids", (ROWS,)), ("in", (ROWS, 4 * nh))],
    "softmax_xent": [("inout", (ROWS, V)), ("ids", (ROWS,)), ("out", (ROWS,))],
}
UPDATE_SIZE = 100_003                  # sum_squares' capped grid walks its grid-stride loop several times


def update_cases():
    """(optimizer name, its hyperparameters) for every rule and the options that change its code path."""
    from .optimizers import OPTIMIZERS
    extra = {"momentum": [dict(nesterov=True, weight_decay=0.01)], "rmsprop": [dict(momentum=0.9, weight_decay=0.01)],
             "adam": [dict(weight_decay=0.01)], "sgd": [dict(weight_decay=0.01)]}
    for name in OPTIMIZERS:
        for hyper in [{}] + extra.get(name, []):
            yield name, hyper


def update_arguments(name, hyper, size, dtype, rng, theta=1.0, lr=0.01, t=3):
    """An optimiser's update on random buffers (state too, >= 0 as s and v are): the kernel's name, its
    host arguments (p, g, theta, *state, t, lr, *hyperparameters), and what the rule's NumPy `update`
    leaves in p and in each state buffer when given the same numbers."""
    import types
    from .engines.clipping import clipping_threshold
    from .optimizers import Optimizer
    optimizer = Optimizer(name, types.SimpleNamespace(xp=np, flat_params=np.zeros(size, dtype), dtype=np.dtype(dtype)),
                          **hyper)
    rule, values = optimizer.rule, [optimizer.hyper[k] for k in optimizer.rule.DEFAULTS]
    p, g = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    state = [np.abs(rng.standard_normal(size)).astype(dtype) for _ in rule.STATE]
    theta = clipping_threshold(theta)
    norm = np.sqrt((g.astype(np.float64) ** 2).sum())
    expected = [p.copy(), *(a.copy() for a in state)]
    rule.update(expected[0], g, theta / norm if norm > theta else 1.0, *expected[1:], t=t, lr=lr,
                **dict(zip(rule.DEFAULTS, values)))
    return rule.KERNEL, [p, g, theta, *state, t, lr, *values], expected


def step_cases():
    """(cell, nonlinearity, kernel name, step function) for every cell's two step kernels and every
    nonlinearity the cell has: what the step kernels are held to, found on the cell modules."""
    for cell in CELLS.values():
        for nonlinearity in cell.NONLINEARITIES:
            yield cell, nonlinearity, cell.FORWARD_KERNEL, cell.step_forward
            yield cell, nonlinearity, cell.BACKWARD_KERNEL, cell.step_backward


def step_arguments(cell, function, nonlinearity, batch, hidden, dtype, rng):
    """Random host arguments for a step function (and so for its kernels), by parameter name:
    arrays of cells.step_shapes; gate values inside (0, 1), as gates are; the step options."""
    shapes, options = step_shapes(cell, batch, hidden), step_options(cell, nonlinearity)
    args = []
    for name in inspect.signature(function).parameters:
        if name in options:
            args.append(options[name])
        elif name == "gates":
            args.append(rng.uniform(0.05, 0.95, shapes[name]).astype(dtype))
        else:
            args.append(rng.standard_normal(shapes[name]).astype(dtype))
    return args


def device_ops(device, dtype):
    """The kernel launchers on this device: CUDA for 'gpu', the host build for 'cpu'."""
    from .gpu.modules import CudaKernels, HostKernels
    from .gpu.ops import KernelOps
    xp = get_array_module(device)
    return KernelOps((CudaKernels if device == "gpu" else HostKernels)(dtype), xp), xp


def check_kernels(device, dtype, report):
    """Every cell's step kernels against the cell's NumPy step function (the one home of its equations),
    the other kernels against their Numba twins; the same arguments for both, every array compared."""
    ops, xp = device_ops(device, dtype)
    rng = np.random.default_rng(0)
    for cell, nonlinearity, name, function in step_cases():
        host = step_arguments(cell, function, nonlinearity, B, nh, dtype, rng)
        dev = [xp.asarray(a) if isinstance(a, np.ndarray) else a for a in host]
        function(*host)
        getattr(ops, name)(*dev)
        worst = max(relative_error(d, h) for d, h in zip(dev, host) if isinstance(h, np.ndarray))
        report(f"kernel {name}{' (' + nonlinearity + ')' if len(cell.NONLINEARITIES) > 1 else ''} vs "
               f"step function ({dtype})", worst, TOL[dtype])
    for name, hyper in update_cases():
        kernel, args, expected = update_arguments(name, hyper, UPDATE_SIZE, dtype, rng)
        dev = [xp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        getattr(ops, kernel)(*dev)
        written = [dev[0], *dev[3:3 + len(expected) - 1]]                         # p, then the state buffers
        worst = max(relative_error(d, e) for d, e in zip(written, expected))
        report(f"kernel {kernel} ({name}{' ' + str(hyper) if hyper else ''}) vs its update ({dtype})", worst,
               TOL[dtype])
    for name, spec in OTHER_KERNELS.items():
        host = []
        for role, shape in spec:
            if role == "ids":
                host.append(rng.integers(0, V, shape))
            else:
                host.append(rng.standard_normal(shape).astype(dtype))
        dev = [xp.asarray(a) if isinstance(a, np.ndarray) else a for a in host]
        twin = [a.copy() if isinstance(a, np.ndarray) else a for a in host]
        getattr(ops, name)(*dev)
        getattr(numba_kernels, name)(*twin)
        worst = max(relative_error(d, t) for (role, _), d, t in zip(spec, dev, twin) if role in ("out", "inout"))
        report(f"kernel {name} vs Numba twin ({dtype})", worst, TOL[dtype])


def check_training(device, report):
    from .data import SeqDataLoader, load_corpus
    corpus, vocab = load_corpus(max_tokens=3000)
    xp = get_array_module(device)
    for cell, layers in ((name, 2) for name in CELLS):
        ref = RNNLM(len(vocab), 64, layers, cell, dtype="float64", engine="reference", seed=1)
        dev = RNNLM(len(vocab), 64, layers, cell, dtype="float64", engine="fast", seed=1, device=device)
        if device == "cpu":
            from .engines import use_host_cuda_kernels
            use_host_cuda_kernels(dev)
        worst = 0.0
        s_ref = s_dev = None
        for X, Y in list(SeqDataLoader(corpus, 16, 20, seed=0))[:4]:
            X, Y = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
            s_ref = ref.begin_state(16) if s_ref is None else detach(s_ref)
            s_dev = dev.begin_state(16) if s_dev is None else detach(s_dev)
            l_ref, s_ref, _ = ref.loss_and_grad(X, Y, s_ref)
            l_dev, s_dev, _ = dev.loss_and_grad(xp.asarray(X), xp.asarray(Y), s_dev)
            ref.clip_and_sgd(1.0, 1.0)
            dev.clip_and_sgd(1.0, 1.0)
            worst = max(worst, abs(float(l_ref) - float(l_dev)) / float(l_ref),
                        relative_error(ref.flat_params, dev.flat_params))
        report(f"training steps {layers}-layer {cell} vs CPU reference (float64)", worst, 1e-10)


def check_gradients(device, report):
    from .engines import use_host_cuda_kernels
    for cell in CELLS:
        if device == "gpu":
            results = check_model(cell, 2, engine="fast", device="gpu")
        else:
            results = check_model(cell, 2, engine="reference", prepare=use_host_cuda_kernels)
        worst = max(max(e.values()) for e in results.values())
        report(f"finite-difference gradient check, 2-layer {cell} (float64)", worst, 1e-6)


def time_deep_lstm(device, steps=50):
    """Tokens/s of the book's deep LSTM training step on this device."""
    xp = get_array_module(device)
    model = RNNLM(28, 256, 2, "lstm", device=device, engine="fast")
    if device == "cpu":
        from .engines import use_host_cuda_kernels
        use_host_cuda_kernels(model)
        steps = 2
    rng = np.random.default_rng(0)
    X, Y = (xp.asarray(rng.integers(0, 28, (35, 32))) for _ in range(2))
    state = model.begin_state(32)

    def run(k):
        nonlocal state
        for _ in range(k):
            _, state, _ = model.loss_and_grad(X, Y, detach(state), state_grad=False)
            model.clip_and_sgd(1.0, 1.0)
        float(model.flat_params[0])                            # wait for the device

    run(2)
    start = time.perf_counter()
    run(steps)
    return steps * 35 * 32 / (time.perf_counter() - start)


def time_torch_cudnn(steps=50):
    """The same step with torch.nn.LSTM (cuDNN) on the GPU, or None without torch+CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    from .torch_baseline import TorchStep
    dev = torch.device("cuda")
    step = TorchStep(torch, "lstm", 28, 256, 2, device=dev)
    X = torch.randint(0, 28, (35, 32), device=dev)
    Y = torch.randint(0, 28, (35 * 32,), device=dev)

    def run(k):
        for _ in range(k):
            step(X, Y)
        torch.cuda.synchronize()

    run(3)
    start = time.perf_counter()
    run(steps)
    return steps * 35 * 32 / (time.perf_counter() - start)


def main(argv=None):
    parser = OneLineParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    add_selftest_arguments(parser)
    args = parser.parse_args(argv)
    failures = []

    def report(what, error, tol):
        ok = error <= tol
        print(f"{'ok  ' if ok else 'FAIL'} {what}: relative error {error:.1e} (limit {tol:.0e})", flush=True)
        if not ok:
            failures.append(what)

    try:
        device = resolve_device(args.device)
        print(f"scratchrnn self-test on {device_name(device)}"
              + ("" if device == "gpu" else " (CUDA kernels built for the host)"))
        for dtype in ("float32", "float64"):
            check_kernels(device, dtype, report)
        check_training(device, report)
        check_gradients(device, report)
        ours = time_deep_lstm(device)
        print(f"deep LSTM step (2 x 256, batch 32, 35 steps): {ours:,.0f} tokens/s with our kernels")
        if device == "gpu":
            theirs = time_torch_cudnn()
            print("PyTorch cuDNN LSTM: " + ("not measured (torch with CUDA is not installed)" if theirs is None
                                           else f"{theirs:,.0f} tokens/s (ours / cuDNN = {ours / theirs:.2f})"))
    except ScratchRNNError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
