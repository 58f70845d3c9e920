"""Where the time of one training step of the fast path goes, phase by phase, measured (not estimated):

    python benchmarks/profile_step.py [--threads 1 2] [--steps 20] [--rounds 5] [--batch 32]

The fast engine runs its own code on the benchmark's data (bench_cpu.py: batch 32, 35 steps, float32,
forward, backward, clipping, SGD; --batch 16 is the half that each of fast-split's processes computes, on one
thread). Only its GEMM and its kernels are wrapped, each call timed
and its time added to its phase:

    recurrent GEMMs     H_{t-1} W_hh forward and dA_t W_hh^T backward: 2 per step and layer (M = B rows), less
                        the backward's at the first step (dL/d(initial state), which training does not read)
    hoisted GEMMs       the input projections of layers above the first, the output layer, dX, the weight
                        gradients: once per chunk (M = T*B or nh rows)
    forward kernels     the fused step_forward twins (cells/), one per step and layer
    backward kernels    the fused step_backward twins
    transpose           W_hh^T packed once per chunk, and each step's transposed Ah back (fast.py)
    packing             with MKL, W_hh and W_hh^T in MKL's packed form, once per chunk (mkl.PackedB.pack)
    softmax_xent, gather_rows_bias, scatter_add_rows, update (clipping and the optimiser's update)
    rest                the step's time minus all of the above: the Python between the calls, the bias sums,
                        the state copies, the timers' own cost (the untimed step is printed beside it)

GEMM phases also show their GFLOP/s against one core's float32 peak (a 1024^3 GEMM at one thread) times the
threads. PyTorch's step (scratchrnn/torch_baseline.py) is timed in the same rounds when torch is installed, in a
process of its own (bench_cpu.TheirsApart).
"""
import argparse
import time
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

from bench_cpu import MODELS, B, Ours, TheirsApart, V, batches, one_core_peak, settle
from scratchrnn.backend import cpu_model
from scratchrnn.cmdline import OneLineParser, positive_int
from scratchrnn.engines import mkl

PHASES = ("recurrent GEMMs", "hoisted GEMMs", "forward kernels", "backward kernels", "transpose", "packing",
          "softmax_xent", "gather_rows_bias", "scatter_add_rows", "update")


class PassThrough:
    """A module with some of its functions replaced."""

    def __init__(self, module, **replaced):
        self.module, self.replaced = module, replaced

    def __getattr__(self, name):
        return self.replaced[name] if name in self.replaced else getattr(self.module, name)


class Timed:
    """Wraps the engine's matmul (NumPy's or MKL's) and its `ops`: every GEMM and every kernel add their time (and a
    GEMM its FLOPs) to a phase; everything else passes through untouched."""

    def __init__(self, engine, rows):
        self.seconds, self.flops = defaultdict(float), defaultdict(float)
        self.engine, self.matmul, self.ops = engine, engine.matmul, engine.ops
        kernels = {engine.cell.FORWARD_KERNEL: "forward kernels", engine.cell.BACKWARD_KERNEL: "backward kernels"}
        kernels.update(sgd_update="update")
        names = ("transpose", "gather_rows_bias", "scatter_add_rows", "softmax_xent", *kernels)
        wrapped_ops = PassThrough(self.ops, **{n: self.timer(getattr(self.ops, n), kernels.get(n, n)) for n in names})
        untimed_matmul = self.matmul

        def matmul(a, b, out):
            phase = "hoisted GEMMs" if rows in a.shape else "recurrent GEMMs"      # over the chunk's T*B rows
            start = time.perf_counter()
            untimed_matmul(a, b, out=out)
            self.seconds[phase] += time.perf_counter() - start
            self.flops[phase] += 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
            return out

        self.wrapped_matmul, self.wrapped_ops = matmul, wrapped_ops
        self.pack, self.wrapped_pack = mkl.PackedB.pack, self.timer(mkl.PackedB.pack, "packing")

    def timer(self, function, phase):
        def timed(*args):
            start = time.perf_counter()
            result = function(*args)
            self.seconds[phase] += time.perf_counter() - start
            return result
        return timed

    def __enter__(self):
        self.seconds.clear()
        self.flops.clear()
        self.swap(self.wrapped_matmul, self.wrapped_ops, self.wrapped_pack)
        return self

    def __exit__(self, *exc):
        self.swap(self.matmul, self.ops, self.pack)

    def swap(self, matmul, ops, pack):
        e = self.engine
        mkl.PackedB.pack = pack
        e.matmul, e.ops = matmul, ops
        e.forward_kernel, e.backward_kernel = getattr(ops, e.cell.FORWARD_KERNEL), getattr(ops, e.cell.BACKWARD_KERNEL)


def profile(cell, layers, nh, data, rounds, torch, peak, threads):
    """(phase -> (ms per step, share), GFLOP/s per GEMM phase, untimed ms per step, timed ms per step,
    PyTorch's ms per step or None): the best round of each; PyTorch's in a process of its own, as bench_cpu's."""
    ours = Ours(cell, layers, nh, "fast", data)
    timed = Timed(ours.m.engine, data[0][0].size)
    theirs = TheirsApart(cell, layers, nh, data, threads) if torch is not None else None
    best = dict(untimed=np.inf, timed=np.inf, torch=np.inf)
    phases = None
    for _ in range(rounds):                                   # interleaved; the best round of each
        settle()
        best["untimed"] = min(best["untimed"], 1e3 * data[0][0].size / ours(data)[0])
        with timed:
            step_ms = 1e3 * data[0][0].size / ours(data)[0]
        if step_ms < best["timed"]:
            best["timed"] = step_ms
            phases = {p: 1e3 * timed.seconds[p] / len(data) for p in PHASES}
            gflops = {p: timed.flops[p] / timed.seconds[p] / 1e9 for p in timed.flops if timed.seconds[p]}
        if theirs is not None:
            settle()
            best["torch"] = min(best["torch"], 1e3 * data[0][0].size / theirs()[0])
    if theirs is not None:
        theirs.close()
    phases["rest"] = best["timed"] - sum(phases.values())
    return phases, gflops, best


def main():
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=positive_int, default=20, help="timed training steps per round")
    p.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds; the best of each is kept")
    p.add_argument("--batch", type=positive_int, default=B, help="sequences per chunk")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    data = batches(args.steps, args.batch)
    peak, blas_lines = one_core_peak()
    print(f"# scratchrnn step profile, {time.strftime('%Y-%m-%d')}, {cpu_model()}, numpy {np.__version__}, "
          f"{'torch ' + torch.__version__ if torch else 'no torch'}; vocabulary {V}, batch {data[0][0].shape[1]}, "
          f"{data[0][0].shape[0]} steps; physical limit {peak:.0f} GFLOP/s per core")
    print("".join(f"# {line}\n" for line in blas_lines))
    for threads in args.threads:
        with threadpool_limits(threads):
            if torch is not None:
                torch.set_num_threads(threads)
            for label, cell, layers, nh in MODELS:
                phases, gflops, best = profile(cell, layers, nh, data, args.rounds, torch, peak, threads)
                print(f"## {label} {layers}x{nh}, {threads} thread{'s' if threads > 1 else ''}: step "
                      f"{best['untimed']:.2f} ms untimed, {best['timed']:.2f} ms timed"
                      + (f"; PyTorch {best['torch']:.2f} ms" if torch else "") + "\n")
                print("| phase | ms per step | share | GFLOP/s | of the physical limit |")
                print("|---|---|---|---|---|")
                for phase, ms in phases.items():
                    rate = gflops.get(phase)
                    print(f"| {phase} | {ms:.2f} | {ms / best['timed']:.0%} | "
                          + (f"{rate:.0f} | {rate / (peak * threads):.0%} |" if rate else "- | - |"))
                print()


if __name__ == "__main__":
    main()
