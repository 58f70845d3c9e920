"""CPU benchmark of the full training step (forward, backward, clipping, SGD, detached state), one run,
same data for every implementation:

    (a) the readable NumPy reference   (b) the fast path (hoisted GEMMs + Numba kernels; its GEMMs on MKL
                                           where it is installed and chosen: engines/mkl.py); at 2 threads
                                           also fast-split (engines/split.py: each half of the batch
                                           on one core, in two processes)
    (c) PyTorch's nn.LSTM / nn.GRU / nn.RNN doing the same work (pip install 'scratchrnn[bench]'), in a
        process of its own (TheirsApart), as a person runs it

for the book's deep LSTM (2 x 256), a GRU (1 x 256) and the tanh RNN (1 x 512), at 1 and 2 threads.
Prints tokens/s, ratios, FLOPs per token, each implementation's share of the float32 physical limit (its
GEMM FLOPs per second over the peak of one core, measured in the same run by a 1024^3 GEMM, times the cores
it uses), the GEMM floor (tokens/s of a step that did nothing but its GEMMs, at their
shapes, with the fast path's BLAS: a bound no implementation on this BLAS passes), the peak memory of a step,
the minor page faults of a step (memory the step touches for the first time: ours preallocates, PyTorch
allocates its tensors anew every step), and memory growth over many steps.

It also says which code PyTorch's step runs, by PyTorch's own profiler: on the CPU its LSTM goes to oneDNN's fused RNN
primitive (a whole layer's time loop in one call), its GRU and RNN to ATen's per-step path. Where it ran the fused
primitive, PyTorch's step is timed again with oneDNN off (its per-step path), in the same rounds, and printed beside.

    python benchmarks/bench_cpu.py [--steps 10] [--rounds 3] [--memory-steps 1000]

This machine is noisy: the implementations take turns over several rounds and each reports its best, each
round after a pause in which the threads of the one before go to sleep (settle()). The targets' lines also give the
median over the rounds of ours over PyTorch's in the same round, which one lucky round of either does not move.
PyTorch's step depends on glibc's allocator: with its defaults, tensors of 128 KiB and more are mapped
afresh and page-faulted in, more or fewer from run to run as glibc moves its mmap threshold. To time
PyTorch with that threshold fixed high (no page faults in its step), set glibc's variables for the run:

    MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_TOP_PAD_=67108864 \
        python benchmarks/bench_cpu.py
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from scratchrnn.backend import BLAS_OVERRIDES, blas_kernel, cpu_model, variables_set
from scratchrnn.cells import CELLS
from scratchrnn.cmdline import OneLineParser, positive_int
from scratchrnn.engines import mkl
from scratchrnn.engines.fast import blas_now, recurrent_layout
from scratchrnn.model import RNNLM
from scratchrnn.torch_baseline import FUSED_RNN_OPS, TorchStep
from scratchrnn.train import detach

try:
    import resource                                        # Unix: getrusage's page-fault count
except ImportError:
    resource = None

V, B, T = 28, 32, 35
MODELS = [("deep LSTM", "lstm", 2, 256), ("GRU", "gru", 1, 256), ("tanh RNN", "rnn", 1, 512)]
# After its last call OpenBLAS's idle worker threads spin for 2^28 cycles (OPENBLAS_THREAD_TIMEOUT's default, about
# 0.1 s) before they sleep, and take a core from whatever runs next: PyTorch's 2-thread LSTM ran at 50,377 tok/s
# right after our rounds and at 58,062 after a 0.3 s pause (2026-12-02, AMD EPYC family 26).
SETTLE_SECONDS = 0.3
# glibc's allocator settings that decide whether PyTorch's step page-faults (see the docstring).
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
# Issue 16's targets, fast path over PyTorch in the same run: (cell, threads) -> ratio.
TARGETS = {("lstm", 1): 1.1, ("lstm", 2): 1.3, ("gru", 1): 1.5, ("gru", 2): 1.5, ("rnn", 1): 1.5, ("rnn", 2): 1.5}


def flops_per_token(cell, layers, nh):
    """Multiply-adds x 2 of every GEMM of one training step, per token. The one-hot input of layer 0
    is a row gather (no FLOPs). Backward GEMMs cost twice the forward (dX and dW), less each layer's last
    recurrent product, dA_1 W_hh^T: dL/d(initial state), which training does not read (the state is detached;
    PyTorch's autograd skips it too)."""
    G = CELLS[cell].GATES
    forward = layers * 2 * nh * G * nh + (layers - 1) * 2 * nh * G * nh + 2 * nh * V
    backward = layers * 4 * nh * G * nh + (layers - 1) * 4 * nh * G * nh + 4 * nh * V
    return forward + backward - layers * 2 * nh * G * nh / T


def gemm_gflops(matmul=np.matmul):
    """This machine's float32 GEMM throughput (1024^3) with `matmul` (NumPy's, or mkl.matmul), at the current thread
    limit: the best of 5 rounds. At one thread, the float32 peak of one core as far as any program on it can tell."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    c = np.empty_like(a)
    for _ in range(3):                                   # wake the BLAS threads up
        matmul(a, a, out=c)
    best = 0.0
    for _ in range(5):                                   # best of 5 rounds: this machine is noisy
        reps, start = 10, time.perf_counter()
        for _ in range(reps):
            matmul(a, a, out=c)
        best = max(best, reps * 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def fast_path_blas():
    """Which BLAS the fast path's GEMMs run on (mkl.chosen, by SCRATCHRNN_BLAS), in words."""
    choice = f"{mkl.VARIABLE}={os.environ.get(mkl.VARIABLE, 'auto')}"
    if mkl.chosen():
        return f"the fast path's GEMMs: {mkl.describe()} ({choice})"
    return f"the fast path's GEMMs: NumPy's BLAS ({choice}; {mkl.describe()})"


def one_core_peak():
    """(one core's float32 peak in GFLOP/s, lines that say how it was found). The larger peak of NumPy's BLAS as it
    is loaded and of MKL where it loads (gemm_gflops at one thread); when one of BLAS_OVERRIDES is set
    (OPENBLAS_CORETYPE=Haswell runs AVX2 kernels on an AVX-512 CPU), also the peak of the kernels OpenBLAS picks for
    this CPU without them, measured in a child process started without them: the physical limit is the CPU's, the
    largest of them."""
    described, overrides = blas_kernel()
    with threadpool_limits(1):
        peak = gemm_gflops()
        mkl_peak = 0.0
        if mkl.load()[0] is not None:
            mkl.load_library()
            mkl.sync_threads(1)
            mkl_peak = gemm_gflops(mkl.matmul)
    lines = [f"NumPy's BLAS: {described}; one core's float32 peak with it (1024^3 GEMM, one thread, best of 5): "
             f"{peak:.0f} GFLOP/s"]
    if mkl_peak:
        lines.append(f"{mkl.describe()}: one core's float32 peak with it, the same way: {mkl_peak:.0f} GFLOP/s")
    lines.append(fast_path_blas())
    peak = max(peak, mkl_peak)
    if not overrides:
        return peak, lines
    child = ("import sys; sys.path.insert(0, sys.argv[1]); from threadpoolctl import threadpool_limits; "
             "from bench_cpu import gemm_gflops; from scratchrnn.backend import blas_kernel\n"
             "with threadpool_limits(1): print(gemm_gflops()); print(blas_kernel()[0])")
    environment = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    try:
        out = subprocess.run([sys.executable, "-c", child, os.path.dirname(os.path.abspath(__file__))],
                             env=environment, capture_output=True, text=True, check=True, timeout=120).stdout
        own_peak, own = float(out.splitlines()[0]), out.splitlines()[1]
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as e:
        lines.append(f"WARNING: {overrides} is set, and this CPU's own kernels could not be measured ({e})")
        return peak, lines
    lines.append(f"WARNING: {overrides} is set: NumPy's BLAS runs these kernels, not the ones OpenBLAS picks for "
                 f"this CPU ({own}: {own_peak:.0f} GFLOP/s per core, measured in a child process without the "
                 f"variable{'s' if ' ' in overrides else ''}). The physical limit below is the larger peak; for this "
                 f"CPU's own figures run: env {' '.join('-u ' + n for n in BLAS_OVERRIDES)} python {sys.argv[0]}")
    return max(peak, own_peak), lines


def minor_faults():
    """Minor page faults of this process so far (getrusage; None where there is none): a page touched for the
    first time since it was mapped costs one, and the kernel zeroes it."""
    return None if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def faults_per_step(before, after, steps):
    return None if before is None else (after - before) / steps


def allocator_line():
    """What decides PyTorch's page faults in this run: glibc's variables as set, or its defaults."""
    given = variables_set(MALLOC_VARIABLES)
    if given:
        return f"glibc allocator: {given}"
    return ("glibc allocator: defaults (PyTorch's tensors of 128 KiB and more are mapped and page-faulted afresh; "
            "for PyTorch without them see this script's docstring)")


def settle():
    """Wait until the BLAS and OpenMP threads of the implementation that ran last have gone to sleep."""
    time.sleep(SETTLE_SECONDS)


def count(faults):
    return "-" if faults is None else f"{faults:,.0f}"


def step_gemms(cell, layers, nh):
    """The GEMMs of one training step of the fast engine, in the layouts it runs them, as (count, M, K, N,
    A transposed?, B transposed?) (a transposed operand is a view of a contiguous array): per layer the
    per-step recurrent GEMMs (fast.recurrent_layout, for the fast path's BLAS and its threads now (fast.blas_now):
    forward H W_hh, or W_hh^T H^T;
    backward dA W_hh^T, from W_hh^T packed once per chunk, or W_hh dA^T), the hoisted input projection and dX of
    layers above the first, the weight gradients over the chunk; the output layer."""
    G, TB = CELLS[cell].GATES, T * B
    gemms = [(1, TB, nh, V, False, False), (1, nh, TB, V, True, False), (1, TB, V, nh, False, True)]
    transposed_forward, transposed_backward = recurrent_layout(np.empty((nh, G * nh), np.float32),
                                                               *blas_now(mkl.chosen()))
    for k in range(layers):
        forward = (T, G * nh, nh, B, False, True) if transposed_forward else (T, B, nh, G * nh, False, False)
        backward = (T - 1, nh, G * nh, B, False, True) if transposed_backward else (T - 1, B, G * nh, nh, False, False)
        gemms += [forward, backward, (1, nh, TB, G * nh, True, False)]
        if k > 0:
            gemms += [(1, TB, nh, G * nh, False, False), (1, nh, TB, G * nh, True, False),
                      (1, TB, G * nh, nh, False, True)]
    return gemms


def gemm_floor(cell, layers, nh, rounds):
    """Tokens/s of a step that did nothing but its GEMMs, with the fast path's BLAS at their very shapes and layouts
    (with MKL, the per-step recurrent GEMMs with W_hh packed, as the engine runs them): an upper bound for this
    engine's step on this BLAS (no gate math, no transposes, no Python)."""
    use_mkl = mkl.chosen()
    matmul = mkl.matmul if use_mkl else np.matmul
    rng = np.random.default_rng(0)
    calls = []
    for count, M, K, N, a_transposed, b_transposed in step_gemms(cell, layers, nh):
        a = rng.standard_normal((K, M) if a_transposed else (M, K)).astype(np.float32)
        b = rng.standard_normal((N, K) if b_transposed else (K, N)).astype(np.float32)
        b = b.T if b_transposed else b
        if use_mkl and count in (T, T - 1):              # a per-step recurrent GEMM: W_hh or W_hh^T, packed
            b = mkl.PackedB(M, K, N, np.float32).pack(b)
        calls += [(a.T if a_transposed else a, b, np.empty((M, N), np.float32))] * count
    best = float("inf")
    for _ in range(rounds + 1):                          # the first round wakes the BLAS threads up
        start = time.perf_counter()
        for a, b, c in calls:
            matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return T * B / best


def batches(steps, batch=B):
    rng = np.random.default_rng(0)
    return [(rng.integers(0, V, (T, batch)), rng.integers(0, V, (T, batch))) for _ in range(steps)]


class Ours:
    """One of our models with its carried state: each call times `data` steps (after a warm-up)."""

    def __init__(self, cell, layers, nh, engine, data):
        self.m = RNNLM(V, nh, layers, cell, engine=engine)
        self.state = self.m.begin_state(data[0][0].shape[1])
        self(data[:2])                                                  # warm-up (and Numba compile)

    def __call__(self, data, trace=False):
        """(tokens/s, peak traced memory or None, minor page faults per step)."""
        if trace:
            tracemalloc.start()
        faults, start = minor_faults(), time.perf_counter()
        for X, Y in data:
            _, self.state, _ = self.m.loss_and_grad(X, Y, detach(self.state), state_grad=False)
            self.m.clip_and_sgd(1.0, 1.0)
        seconds, faults = time.perf_counter() - start, faults_per_step(faults, minor_faults(), len(data))
        peak = None
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return sum(X.size for X, _ in data) / seconds, peak, faults


class Theirs:
    """PyTorch doing the same work (scratchrnn/torch_baseline.py); fused_rnn=False: with oneDNN off, so that its LSTM
    takes ATen's per-step path as its GRU and RNN do."""

    def __init__(self, torch, cell, layers, nh, data, fused_rnn=True):
        self.step = TorchStep(torch, cell, V, nh, layers, fused_rnn=fused_rnn)
        self.tensors = [(torch.from_numpy(X), torch.from_numpy(Y).reshape(-1)) for X, Y in data]
        self(2)                                                         # warm-up

    def top_ops(self):
        """The ATen operators that take most of the step's time, by PyTorch's profiler (TorchStep.top_ops)."""
        return self.step.top_ops(*self.tensors[0])

    def __call__(self, n=None):
        """(tokens/s, minor page faults per step)."""
        tensors = self.tensors[:n]
        faults, start = minor_faults(), time.perf_counter()
        for X, Y in tensors:
            self.step(X, Y)
        seconds = time.perf_counter() - start
        return sum(X.numel() for X, _ in tensors) / seconds, faults_per_step(faults, minor_faults(), len(tensors))


def serve_torch(connection, cell, layers, nh, data, fused_rnn, threads):
    """TheirsApart's process: PyTorch on `threads` threads, its step built and warmed up as Theirs does, then over
    the steps once more (its heap grown to what a step takes); then it answers each request, ("step", n): Theirs(n),
    ("top_ops", None): its profile, until None."""
    import torch
    torch.set_num_threads(threads)
    theirs = Theirs(torch, cell, layers, nh, data, fused_rnn)
    theirs()
    connection.send("ready")
    for what, n in iter(connection.recv, None):
        connection.send(theirs.top_ops() if what == "top_ops" else theirs(n))


class TheirsApart:
    """Theirs in a process of its own, as a person runs PyTorch, called as Theirs is: each call times its steps there
    and sends back (tokens/s, page faults per step). In our process PyTorch's LSTM step took 0-260 page faults per
    step in some runs, glibc's threshold fixed (round sixteen), against 0-0.05 in a process of its own; and its OpenMP
    threads shared the process with MKL's and our worker's pipes."""

    def __init__(self, cell, layers, nh, data, threads, fused_rnn=True):
        context = multiprocessing.get_context("spawn")                   # a fresh interpreter: nothing of ours in it
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=serve_torch, args=(theirs, cell, layers, nh, data, fused_rnn, threads),
                                       daemon=True)
        self.process.start()
        theirs.close()
        self.connection.recv()                                          # built and warmed up

    def top_ops(self):
        self.connection.send(("top_ops", None))
        return self.connection.recv()

    def __call__(self, n=None):
        self.connection.send(("step", n))
        return self.connection.recv()

    def close(self):
        self.connection.send(None)
        self.process.join()


def memory_growth(steps, engine="fast"):
    """Traced memory of the deep LSTM on `engine` after a warm-up of `steps` steps and after `steps` more (this
    process's: fast-split's worker is not traced), and the worker's resident memory (VmRSS) at the same marks
    (fast-split on Linux; else None). The warm-up matters: during the first ~1,000 steps CPython's free lists (e.g.
    for the small state tuples) fill up to their fixed size, which tracemalloc counts as growth; after that nothing
    grows."""
    m = RNNLM(V, 256, 2, "lstm", engine=engine)
    state = m.begin_state(B)
    X, Y = batches(1)[0]
    tracemalloc.start()
    marks, worker = {}, {}
    for i in range(1, 2 * steps + 1):
        _, state, _ = m.loss_and_grad(X, Y, detach(state), state_grad=False)
        m.clip_and_sgd(1.0, 1.0)
        if i in (10, steps, 2 * steps):
            marks[i] = tracemalloc.get_traced_memory()[0]
            worker[i] = worker_rss(m)
    tracemalloc.stop()
    if engine == "fast-split":
        m.engine.close()
    return marks, (worker if None not in worker.values() else None)


def worker_rss(model):
    """Resident memory of the fast-split engine's worker process in bytes (/proc: Linux), else None."""
    process = getattr(model.engine, "worker", [None])[0]
    try:
        with open(f"/proc/{process[0].pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (TypeError, OSError, StopIteration):
        return None


def memory_steps(text):
    """0 (skip the check) or at least 10 (memory_growth takes its first mark after 10 steps)."""
    if text.isdigit() and (int(text) == 0 or int(text) >= 10):
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 0 (skip) or at least 10, got {text!r}")


def main():
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=positive_int, default=10, help="timed training steps per measurement")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="interleaved timing rounds; each implementation's best round is reported")
    p.add_argument("--memory-steps", type=memory_steps, default=1000,
                   help="steps for the memory-growth check (0: skip; else at least 10)")
    args = p.parse_args()
    try:
        import torch
        torch_note = f"torch {torch.__version__}"
    except ImportError:
        torch, torch_note = None, "torch not installed: PyTorch column missing (pip install 'scratchrnn[bench]')"
    data = batches(args.steps)
    peak, blas_lines = one_core_peak()                   # one core's float32 peak; the limit is peak x cores
    print(f"# scratchrnn CPU benchmark, {time.strftime('%Y-%m-%d')}, {cpu_model()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}, {torch_note}")
    print(f"# batch {B}, {T} steps, vocabulary {V}, float32; full step: forward, backward, clip, SGD")
    for line in blas_lines + [allocator_line()]:
        print(f"# {line}")
    print(f"# physical limit: {peak:.0f} GFLOP/s per core\n")
    print("| model | threads | reference tok/s | fast tok/s | PyTorch tok/s | fast/PyTorch | fast/reference "
          "| MFLOP/token | fast GFLOP/s | fast of limit | PyTorch of limit | GEMM floor tok/s | fast of floor "
          "| peak step memory (fast) | page faults per step, fast / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    targets, accounts, per_step_rows = [], [], []
    fused = {}                                         # per model: whether PyTorch's step ran oneDNN's fused RNN
    for threads in (1, 2):
        with threadpool_limits(threads):
            if torch is not None:
                torch.set_num_threads(threads)
            limit = peak * threads                       # GFLOP/s: the physical limit at this many cores
            for label, cell, layers, nh in MODELS:
                ref_data = data[:max(2, args.steps // 3)]
                ours = {"ref": Ours(cell, layers, nh, "reference", data), "fast": Ours(cell, layers, nh, "fast", data)}
                if threads == 2:                       # each half of the batch on one core (engines/split.py)
                    ours["fast-split"] = Ours(cell, layers, nh, "fast-split", data)
                theirs = TheirsApart(cell, layers, nh, data, threads) if torch is not None else None
                per_step = None                        # PyTorch with oneDNN off, where it ran oneDNN's fused RNN
                if theirs is not None:
                    if label not in fused:             # profiled once per model: the code it runs has no thread count
                        ops = theirs.top_ops()
                        fused[label] = any(name in FUSED_RNN_OPS for name, _, _ in ops)
                        accounts.append(f"{label} {layers}x{nh}: " + ", ".join(
                            f"{name} {share:.0%} ({calls:g} call{'s' if calls != 1 else ''} a step)"
                            for name, share, calls in ops) + (": oneDNN's fused RNN primitive" if fused[label] else
                                                              ": ATen's per-step path"))
                    if fused[label]:
                        per_step = TheirsApart(cell, layers, nh, data, threads, fused_rnn=False)
                rounds = {name: [] for name in [*ours, "torch", "torch, per-step"]}   # each round's (tok/s, faults)
                for _ in range(args.rounds):           # interleaved rounds, the best of each: same rule for all
                    for name, step in ours.items():
                        settle()
                        rounds[name].append(step(ref_data if name == "ref" else data)[::2])
                    for name, step in (("torch", theirs), ("torch, per-step", per_step)):
                        if step is not None:
                            settle()
                            rounds[name].append(step())
                best = {name: max(measured, key=lambda x: x[0], default=(0.0, None))      # the best round of each
                        for name, measured in rounds.items()}
                floor = gemm_floor(cell, layers, nh, max(3, args.rounds))
                f = flops_per_token(cell, layers, nh)
                (r, _), (t, t_faults) = best["ref"], best["torch"]
                mine = [name for name in ours if name != "ref"]
                for name in mine:
                    (q, q_faults), (_, memory, _) = best[name], ours[name](data[:2], trace=True)
                    print(f"| {label} {layers}x{nh}{', ' + name if name != 'fast' else ''} | {threads} | {r:,.0f} | "
                          f"{q:,.0f} | " + (f"{t:,.0f} | {q / t:.2f}x" if t else "missing | -")
                          + f" | {q / r:.2f}x | {f / 1e6:.2f} | {q * f / 1e9:.1f} | {q * f / 1e9 / limit:.0%} | "
                          + (f"{t * f / 1e9 / limit:.0%}" if t else "-")
                          + f" | {floor:,.0f} | {q / floor:.0%} | {memory / 2**20:.1f} MiB | "
                          + f"{count(q_faults)} / {count(t_faults)} |")
                if "fast-split" in ours:
                    ours["fast-split"].m.engine.close()
                for apart in (theirs, per_step):
                    if apart is not None:
                        apart.close()
                if t:
                    goal, name = TARGETS[cell, threads], max(mine, key=lambda n: best[n][0])
                    q = best[name][0]
                    paired = np.median([a / b for (a, _), (b, _) in zip(rounds[name], rounds["torch"])])
                    if per_step is not None:
                        p = best["torch, per-step"][0]
                        per_step_rows.append(f"| {label} {layers}x{nh} | {threads} | {name} | {q:,.0f} | {t:,.0f} | "
                                             f"{p:,.0f} | {q / t:.2f}x | {q / p:.2f}x |")
                    targets.append(f"{label}, {threads} thread{'s' if threads > 1 else ''}: {goal}x PyTorch is "
                                   f"{goal * t:,.0f} tok/s = {goal * t * f / 1e9 / limit:.0%} of the physical limit "
                                   f"({limit:.0f} GFLOP/s) and {goal * t / floor:.0%} of the step's GEMM floor; "
                                   f"{'met' if q >= goal * t else 'not met'} ({q / t:.2f}x, {name}; the median of "
                                   f"its {args.rounds} rounds over PyTorch's in the same rounds {paired:.2f}x; "
                                   f"PyTorch's step took {count(t_faults)} page faults)")
    if accounts:
        print("\nPyTorch's step by its own profiler (torch.profiler, 1 thread: the ATen operators with the most "
              "self CPU time):\n" + "\n".join(f"- {x}" for x in accounts))
    if per_step_rows:
        print("\nWhere PyTorch ran oneDNN's fused RNN primitive, its step again with oneDNN off "
              "(torch.backends.mkldnn.flags(enabled=False): ATen's per-step path, the one its GRU and RNN take), "
              "in the same rounds; ours is the faster of our engines:\n")
        print("| model | threads | ours | ours tok/s | PyTorch tok/s | PyTorch, oneDNN off, tok/s | ours/PyTorch "
              "| ours/PyTorch, oneDNN off |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(per_step_rows))
    if targets:
        print("\ntargets (issue 16), what each needs from this machine:\n" + "\n".join(f"- {x}" for x in targets))
    if args.memory_steps:
        n = args.memory_steps
        for engine in ("fast", "fast-split"):
            marks, worker = memory_growth(n, engine)
            print(f"\nmemory (traced, deep LSTM, {engine}): {marks[10] / 2**20:.2f} MiB after 10 steps, "
                  f"{marks[n] / 2**20:.2f} MiB after {n} (interpreter free lists filling), "
                  f"{marks[2 * n] / 2**20:.2f} MiB after {2 * n}: growth over the last {n} steps "
                  f"{(marks[2 * n] - marks[n]) / 2**10:+.1f} KiB")
            if worker:
                print(f"  its worker process, resident: {worker[10] / 2**20:.1f} MiB after 10 steps, "
                      f"{worker[n] / 2**20:.1f} after {n}, {worker[2 * n] / 2**20:.1f} after {2 * n}")

if __name__ == "__main__":
    main()
