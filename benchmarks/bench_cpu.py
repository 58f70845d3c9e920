"""CPU benchmark of the full training step (forward, backward, clipping, SGD, detached state), one run,
same data for every implementation:

    (a) the readable NumPy reference   (b) the fast path (hoisted GEMMs + Numba kernels)
    (c) PyTorch's nn.LSTM / nn.GRU / nn.RNN doing the same work (pip install 'scratchrnn[bench]')

for the book's deep LSTM (2 x 256), a GRU (1 x 256) and the tanh RNN (1 x 512), at 1 and 2 threads.
Prints tokens/s, ratios, FLOPs per token, the fraction of this machine's own float32 GEMM throughput
(measured in the same run), the peak memory of a step, and memory growth over many steps.

    python benchmarks/bench_cpu.py [--steps 10] [--memory-steps 1000]
"""
import argparse
import os
import platform
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from scratchrnn.model import RNNLM
from scratchrnn.torch_baseline import TorchStep
from scratchrnn.train import detach

V, B, T = 28, 32, 35
MODELS = [("deep LSTM", "lstm", 2, 256), ("GRU", "gru", 1, 256), ("tanh RNN", "rnn", 1, 512)]


def flops_per_token(cell, layers, H):
    """Multiply-adds x 2 of every GEMM of one training step, per token. The one-hot input of layer 0
    is a row gather (no FLOPs). Backward GEMMs cost twice the forward (dX and dW)."""
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    forward = layers * 2 * H * G * H + (layers - 1) * 2 * H * G * H + 2 * H * V
    backward = layers * 4 * H * G * H + (layers - 1) * 4 * H * G * H + 4 * H * V
    return forward + backward


def gemm_gflops():
    """This machine's float32 GEMM throughput (1024^3), at the current thread limit: the best of 5 rounds."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    c = np.empty_like(a)
    for _ in range(3):                                   # wake the BLAS threads up
        np.matmul(a, a, out=c)
    best = 0.0
    for _ in range(5):                                   # best of 5 rounds: this machine is noisy
        reps, start = 10, time.perf_counter()
        for _ in range(reps):
            np.matmul(a, a, out=c)
        best = max(best, reps * 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def batches(steps):
    rng = np.random.default_rng(0)
    return [(rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))) for _ in range(steps)]


def time_ours(cell, layers, H, engine, data, trace=False):
    m = RNNLM(V, H, layers, cell, engine=engine)
    state = m.begin_state(B)
    X, Y = data[0]
    for _ in range(2):                                                # warm-up (and Numba compile)
        _, state, _ = m.loss_and_grad(X, Y, detach(state))
        m.clip_and_sgd(1.0, 1.0)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    for X, Y in data:
        _, state, _ = m.loss_and_grad(X, Y, detach(state))
        m.clip_and_sgd(1.0, 1.0)
    seconds = time.perf_counter() - start
    peak = None
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return len(data) * T * B / seconds, peak


def time_torch(torch, cell, layers, H, data):
    step = TorchStep(torch, cell, V, H, layers)
    tensors = [(torch.from_numpy(X), torch.from_numpy(Y).reshape(-1)) for X, Y in data]
    for X, Y in tensors[:2]:
        step(X, Y)
    start = time.perf_counter()
    for X, Y in tensors:
        step(X, Y)
    return len(tensors) * T * B / (time.perf_counter() - start)


def memory_growth(steps):
    """Traced memory of the fast deep LSTM after a warm-up of `steps` steps and after `steps` more.
    The warm-up matters: during the first ~1,000 steps CPython's free lists (e.g. for the small state
    tuples) fill up to their fixed size, which tracemalloc counts as growth; after that nothing grows."""
    m = RNNLM(V, 256, 2, "lstm", engine="fast")
    state = m.begin_state(B)
    X, Y = batches(1)[0]
    tracemalloc.start()
    marks = {}
    for i in range(1, 2 * steps + 1):
        _, state, _ = m.loss_and_grad(X, Y, detach(state))
        m.clip_and_sgd(1.0, 1.0)
        if i in (10, steps, 2 * steps):
            marks[i] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return marks


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per measurement")
    p.add_argument("--memory-steps", type=int, default=1000, help="steps for the memory-growth check (0: skip)")
    args = p.parse_args()
    try:
        import torch
        torch_note = f"torch {torch.__version__}"
    except ImportError:
        torch, torch_note = None, "torch not installed: PyTorch column missing (pip install 'scratchrnn[bench]')"
    data = batches(args.steps)
    print(f"# scratchrnn CPU benchmark, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}, {torch_note}")
    print(f"# batch {B}, {T} steps, vocabulary {V}, float32; full step: forward, backward, clip, SGD\n")
    print("| model | threads | reference tok/s | fast tok/s | PyTorch tok/s | fast/PyTorch | fast/reference "
          "| MFLOP/token | fast GFLOP/s | of machine GEMM | peak step memory (fast) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in (1, 2):
        with threadpool_limits(threads):
            if torch is not None:
                torch.set_num_threads(threads)
            machine = gemm_gflops()
            for label, cell, layers, H in MODELS:
                ref, _ = time_ours(cell, layers, H, "reference", data[:max(2, args.steps // 3)])
                fast, _ = time_ours(cell, layers, H, "fast", data)
                _, peak = time_ours(cell, layers, H, "fast", data[:2], trace=True)
                theirs = time_torch(torch, cell, layers, H, data) if torch is not None else None
                f = flops_per_token(cell, layers, H)
                print(f"| {label} {layers}x{H} | {threads} | {ref:,.0f} | {fast:,.0f} | "
                      + (f"{theirs:,.0f} | {fast / theirs:.2f}x" if theirs else "missing | -")
                      + f" | {fast / ref:.2f}x | {f / 1e6:.2f} | {fast * f / 1e9:.1f} | "
                      f"{fast * f / 1e9 / machine:.0%} of {machine:.0f} GFLOP/s | {peak / 2**20:.1f} MiB |")
    if args.memory_steps:
        n = args.memory_steps
        marks = memory_growth(n)
        print(f"\nmemory (traced, fast deep LSTM): {marks[10] / 2**20:.2f} MiB after 10 steps, "
              f"{marks[n] / 2**20:.2f} MiB after {n} (interpreter free lists filling), "
              f"{marks[2 * n] / 2**20:.2f} MiB after {2 * n}: growth over the last {n} steps "
              f"{(marks[2 * n] - marks[n]) / 2**10:+.1f} KiB")

if __name__ == "__main__":
    main()
