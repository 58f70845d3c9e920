"""The CPU benchmark's own arithmetic (benchmarks/bench_cpu.py): its GEMM list is the step's FLOPs; its physical
limit is the CPU's, whatever kernels OpenBLAS is told to run."""
from pathlib import Path

import pytest

from conftest import CELL_NAMES

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_cpu.py"


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(BENCH)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_gemm_floor_times_exactly_the_steps_flops(bench, cell, layers):
    """The GEMMs timed for the floor add up to the FLOPs per token the table divides by."""
    nh = 64
    flops = sum(count * 2 * M * K * N for count, M, K, N, _, _ in bench.step_gemms(cell, layers, nh))
    assert flops == pytest.approx(bench.flops_per_token(cell, layers, nh) * bench.T * bench.B, rel=1e-12)


@pytest.mark.parametrize("script, args", [("bench_cpu.py", ["--steps", "0"]), ("bench_cpu.py", ["--memory-steps", "5"]),
                                          ("book_run_torch.py", ["--epochs", "-1"])])
def test_benchmark_flags_are_checked_in_one_line(script, args):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(BENCH.parent / script), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: argument") and len(r.stderr.strip().splitlines()) == 1


def test_the_torch_book_run_trains_the_scratch_rnn_from_the_books_init():
    """`book_run_torch.py --scratch --init normal` runs and prints the book's closing line."""
    import subprocess
    import sys
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, str(BENCH.parent / "book_run_torch.py"), "--scratch", "--init", "normal",
                        "--epochs", "2", "--every", "1", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("epoch    1  perplexity") and lines[1].startswith("epoch    2  perplexity")
    assert lines[2].startswith("perplexity ") and "tokens/sec on cpu" in lines[2]
    assert lines[3].startswith("wall time ")
    if sys.platform.startswith("linux"):                       # getrusage counts the page faults of its steps
        assert lines[4].startswith("page faults: ") and " per step; glibc allocator: " in lines[4]


def test_the_torch_book_run_can_turn_onednn_off():
    """`book_run_torch.py --no-onednn`: PyTorch's LSTM on its per-step path, said in its closing line."""
    import subprocess
    import sys
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, str(BENCH.parent / "book_run_torch.py"), "--no-onednn", "--epochs", "1",
                        "--every", "1", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "(PyTorch " in r.stdout and ", 1 threads, oneDNN off)" in r.stdout


def test_the_physical_limit_is_the_cpus_own_kernels_peak_when_openblas_is_told_to_run_others(bench, monkeypatch):
    """With OPENBLAS_CORETYPE set (on some machines it makes OpenBLAS run AVX2 kernels on an AVX-512 CPU), the
    benchmark says so and also measures, in a child process without it, the kernels OpenBLAS picks for this CPU:
    the physical limit is the larger peak. Without it, one line and no child."""
    monkeypatch.setattr(bench, "gemm_gflops", lambda matmul=None: 1.0)   # in-process peaks; the child's is real
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    peak, lines = bench.one_core_peak()
    assert lines[0].startswith("NumPy's BLAS: ") and "1 GFLOP/s" in lines[0]
    assert lines[-2].startswith("the fast path's GEMMs: ")
    assert lines[-1].startswith("WARNING: OPENBLAS_CORETYPE=Haswell") and "env -u OPENBLAS_CORETYPE" in lines[-1]
    assert peak > 1.0 and f"{peak:.0f} GFLOP/s per core" in lines[-1]
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert bench.one_core_peak() == (1.0, lines[:-1])


@pytest.mark.parametrize("blas", ["numpy", "mkl"])
def test_the_benchmark_names_the_fast_paths_blas_and_times_its_gemms_in_its_layouts(bench, blas, monkeypatch):
    """bench_cpu says which BLAS the fast path's GEMMs run on (SCRATCHRNN_BLAS, engines/mkl.py), measures MKL's peak
    beside NumPy's where MKL loads, and its GEMM floor takes the engine's layouts for that BLAS."""
    import numpy as np
    from scratchrnn.engines import mkl
    from scratchrnn.engines.fast import blas_now, recurrent_layout
    if blas == "mkl" and mkl.load()[0] is None:
        pytest.skip("MKL is not installed (pip install 'scratchrnn[mkl]')")
    monkeypatch.setenv(mkl.VARIABLE, blas)
    line = bench.fast_path_blas()
    assert line.startswith("the fast path's GEMMs: " + ("MKL " if blas == "mkl" else "NumPy's BLAS"))
    assert f"{mkl.VARIABLE}={blas}" in line
    peaks = []
    monkeypatch.setattr(bench, "gemm_gflops", lambda matmul=np.matmul: peaks.append(matmul) or 1.0 + len(peaks))
    peak, lines = bench.one_core_peak()
    assert peaks[0] is np.matmul and peaks[1:] == ([mkl.matmul] if mkl.load()[0] is not None else [])
    assert peak == 1.0 + len(peaks) and line in lines
    nh = 256
    expected = recurrent_layout(np.empty((nh, 4 * nh), np.float32), *blas_now(blas == "mkl"))
    forward = (bench.T, 4 * nh, nh, bench.B, False, True) if expected[0] else (bench.T, bench.B, nh, 4 * nh, False, False)
    assert forward in bench.step_gemms("lstm", 1, nh)
    assert bench.gemm_floor("lstm", 1, 32, 1) > 0


def test_the_cpu_and_numpys_blas_are_named():
    """cpu_model names the family and model where Linux gives them (every EPYC is "AMD EPYC" under KVM);
    numpy_blas finds NumPy's own BLAS, not torch's, and blas_kernel names any override."""
    import os
    from scratchrnn.backend import blas_kernel, cpu_model, numpy_blas
    model = cpu_model()
    assert model
    if os.path.exists("/proc/cpuinfo") and "cpu family" in open("/proc/cpuinfo").read():
        assert "(family " in model and ", model " in model
    blas = numpy_blas()
    assert blas is not None and blas["library"]
    described, overrides = blas_kernel()
    assert described.startswith(blas["library"])
    assert overrides == " ".join(f"{n}={os.environ[n]}" for n in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                                 if n in os.environ)


def test_page_faults_are_counted_and_the_fast_step_takes_none(bench):
    """minor_faults counts the pages a process touches for the first time (what PyTorch's step pays for every tensor
    glibc maps afresh); the fast engine's step, whose buffers are allocated once per chunk shape, touches none."""
    import mmap
    if bench.minor_faults() is None:
        pytest.skip("no getrusage on this platform")
    fresh = mmap.mmap(-1, 4 << 20)
    before = bench.minor_faults()
    for offset in range(0, 4 << 20, 4096):
        fresh[offset] = 1
    assert bench.minor_faults() > before
    fresh.close()
    data = bench.batches(20)
    ours = bench.Ours("lstm", 2, 32, "fast", data)
    ours(data)                                                    # every buffer touched once
    _, _, faults = ours(data)
    assert faults < 1.0, f"{faults} page faults per step: the fast step allocates"
    assert bench.faults_per_step(None, 5, 2) is None and bench.faults_per_step(10, 30, 4) == 5.0


def test_the_allocator_settings_are_named(bench, monkeypatch):
    for name in bench.MALLOC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert bench.allocator_line().startswith("glibc allocator: defaults")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "67108864")
    assert bench.allocator_line() == "glibc allocator: MALLOC_MMAP_THRESHOLD_=67108864"


@pytest.mark.parametrize("blas", ["mkl", "numpy"])
def test_the_profile_times_a_chunk_of_any_batch_phase_by_phase(bench, load_script, blas, monkeypatch):
    """profile_step --batch 16 (fast-split's half): the data, the state and the tokens counted are the batch's; every
    recurrent GEMM (2 per step and layer, B rows, less the backward's first: dL/d(initial state), which training does
    not read) lands in its phase with its FLOPs, and with MKL the four packings of
    W_hh and W_hh^T (one per chunk, layer and direction) in theirs."""
    from scratchrnn.engines import mkl
    if blas == "mkl" and mkl.load()[0] is None:
        pytest.skip("MKL is not installed")
    monkeypatch.setenv("SCRATCHRNN_BLAS", blas)
    monkeypatch.syspath_prepend(str(BENCH.parent))                 # profile_step imports bench_cpu
    profile = load_script(BENCH.parent / "profile_step.py")
    B, T, nh, layers = bench.V, bench.T, 16, 2                  # B = V: no GEMM taken for another by its shape
    data = profile.batches(3, B)
    assert T * B not in (nh, 4 * nh, bench.V)
    assert all(X.shape == Y.shape == (T, B) for X, Y in data)
    ours = profile.Ours("lstm", layers, nh, "fast", data)
    assert ours.state[0][0].shape == (B, nh)
    packs = []
    real_pack = mkl.PackedB.pack
    monkeypatch.setattr(mkl.PackedB, "pack", lambda self, W: packs.append(W.shape) or real_pack(self, W))
    timed = profile.Timed(ours.m.engine, T * B)
    with timed:
        tokens_per_second, _, _ = ours(data)
    assert tokens_per_second > 0
    assert timed.flops["recurrent GEMMs"] == len(data) * (2 * T - 1) * layers * (2 * B * nh * 4 * nh)
    assert (timed.seconds["packing"] > 0) == (blas == "mkl") == (len(packs) == len(data) * layers * 2)
    assert mkl.PackedB.pack.__name__ == "<lambda>"                # put back as it was when the block ends


def test_pytorch_is_timed_in_a_process_of_its_own(monkeypatch):
    """bench_cpu and profile_step time PyTorch's step in a process of its own (TheirsApart), as a person runs it: in
    ours its LSTM step took 0-260 page faults per step in some runs with glibc's threshold fixed, 0-0.05 alone. It
    answers as Theirs does: tokens/s and page faults per step of its steps, and PyTorch's profile of its step."""
    import importlib
    import os
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(BENCH.parent))            # the process imports bench_cpu by name, as its parent
    bench = importlib.import_module("bench_cpu")
    theirs = bench.TheirsApart("lstm", 1, 8, bench.batches(3), threads=1)
    try:
        assert theirs.process.is_alive() and theirs.process.pid != os.getpid()
        tokens_per_second, faults = theirs()
        assert tokens_per_second > 0 and (faults is None or faults >= 0)
        assert theirs(1)[0] > 0
        ops = theirs.top_ops()
        assert ops and all(name.startswith("aten::") and 0 < share <= 1 for name, share, _ in ops)
    finally:
        theirs.close()
    assert theirs.process.exitcode == 0
