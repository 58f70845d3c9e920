"""Our kernels without a GPU: every .cu file compiles with nvcc (and NVRTC) for sm_80 and sm_90, and the same
sources built for the host run through the very same launchers (gpu/ops.py). Each cell's step kernels, CUDA
and Numba, are held to the cell's NumPy step function (the one home of its equations), called with the same
arguments; the other kernels to the NumPy functions they fuse."""
import inspect
import shutil
import subprocess
import sys

import numpy as np
import pytest

from scratchrnn.cells import CELLS
from scratchrnn.data import SeqDataLoader, load_corpus
from scratchrnn.engines import numba_kernels, use_host_cuda_kernels
from scratchrnn.errors import DeviceError
from scratchrnn.gpu import modules
from scratchrnn.gpu.modules import KERNEL_DIR, KERNEL_FILES, HostKernels, kernel_signatures
from scratchrnn.gpu.ops import BLOCK, KernelOps
from scratchrnn.model import RNNLM
from scratchrnn.optimizers import OPTIMIZERS
from scratchrnn.selftest import step_arguments, step_cases, update_cases
from scratchrnn.train import train_epoch

DTYPES = {"float32": 1e-5, "float64": 1e-12}
SIZES = [(3, 5), (32, 256), (7, 300)]          # B*nh below, at and across the block size of 256


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("filename", KERNEL_FILES)
def test_kernel_compiles_with_nvcc_for_sm80_and_sm90(filename, real, tmp_path):
    cmd = ["nvcc", "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           "--Werror", "all-warnings", f"-DSCRATCHRNN_REAL={real}", "-c", str(KERNEL_DIR / filename),
           "-o", str(tmp_path / "k.o")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if shutil.which("cuobjdump"):                        # where the CUDA binary tools are there too
        listing = subprocess.run(["cuobjdump", "--list-elf", str(tmp_path / "k.o")], capture_output=True, text=True)
        assert "sm_80" in listing.stdout and "sm_90" in listing.stdout


def test_every_kernel_source_and_the_corpus_ship_in_a_wheel():
    """setup.cfg's package_data decides what a wheel (a non-editable install) holds besides the Python
    code: every file in kernels/ (the .cu sources and the headers they include) and the corpus must match
    one of its patterns, or the installed kernels cannot compile. common.cuh once matched none."""
    import configparser
    import fnmatch
    from pathlib import Path
    package = KERNEL_DIR.parent
    config = configparser.ConfigParser()
    config.read(package.parent / "setup.cfg")
    patterns = config["options.package_data"]["scratchrnn"].split()
    files = [f.relative_to(package).as_posix() for folder in ("kernels", "data") for f in (package / folder).iterdir()
             if f.is_file() and f.suffix != ".py"]
    assert "kernels/common.cuh" in files and "data/timemachine.txt" in files
    assert set(KERNEL_FILES) <= {Path(f).name for f in files}
    for f in files:
        assert any(fnmatch.fnmatch(f, p) for p in patterns), f"{f} is not in setup.cfg's package_data"


def test_every_kernel_has_a_signature_and_a_launcher():
    """Every kernel is found in the sources; a cell's step kernels by the names on the cell module (their
    launchers are made from the signature), the others have launchers of their own."""
    names = {n for f in KERNEL_FILES for n in kernel_signatures((KERNEL_DIR / f).read_text())}
    cell_kernels = {n for cell in CELLS.values() for n in (cell.FORWARD_KERNEL, cell.BACKWARD_KERNEL)}
    updates = {module.KERNEL for module, _ in OPTIMIZERS.values()}
    others = {"softmax_xent_partial", "softmax_xent_rows", "softmax_xent_grad", "sum_squares", "gather_rows_bias",
              "scatter_add_rows"} | updates
    assert names == cell_kernels | others
    ops = KernelOps(HostKernels("float32"), np)
    for name in cell_kernels | updates | {"softmax_xent", "gather_rows_bias", "scatter_add_rows"}:
        assert callable(getattr(ops, name)) and callable(getattr(numba_kernels, name)), name
    with pytest.raises(AttributeError):
        ops.no_such_kernel


@pytest.mark.parametrize("cell", CELLS.values(), ids=list(CELLS))
def test_step_kernels_take_the_step_functions_arguments(cell):
    """One home per equation: each step kernel, Numba and CUDA, has the step function's name on the cell
    module and its parameters, by name and in order (the CUDA kernel then the sizes B and nh)."""
    for function, name in ((cell.step_forward, cell.FORWARD_KERNEL), (cell.step_backward, cell.BACKWARD_KERNEL)):
        params = list(inspect.signature(function).parameters)
        assert list(inspect.signature(getattr(numba_kernels, name).py_func).parameters) == params, name
        source = next(s for s in modules.read_sources().values() if name in kernel_signatures(s))
        assert [p for _, p in kernel_signatures(source)[name]] == params + ["B", "nh"], name


def close(actual, expected, dtype):
    tol = DTYPES[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * max(1.0, np.abs(expected).max()))


@pytest.fixture(params=list(DTYPES))
def setup(request):
    dtype = request.param
    rng = np.random.default_rng(5)
    return dtype, KernelOps(HostKernels(dtype), np), lambda *s: rng.standard_normal(s).astype(dtype), rng


STEP_CASES = list(step_cases())


@pytest.mark.parametrize("twin", ["numba", "cuda"])
@pytest.mark.parametrize("B, nh", SIZES)
@pytest.mark.parametrize("cell, nonlinearity, name, function", STEP_CASES,
                         ids=[f"{c.__name__.split('.')[-1]}-{nl}-{n}" for c, nl, n, _ in STEP_CASES])
def test_step_kernel_equals_its_step_function(setup, cell, nonlinearity, name, function, B, nh, twin):
    """The cell's NumPy step function and its fused twin (Numba, or the CUDA kernel built for the host and
    launched by gpu/ops.py), called with the very same arguments: every array they write is the same."""
    dtype, ops, _, rng = setup
    args = step_arguments(cell, function, nonlinearity, B, nh, dtype, rng)
    expected = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    function(*expected)
    kernel = getattr(numba_kernels if twin == "numba" else ops, name)
    kernel(*args)
    changed = 0
    for (param, a, e) in zip(inspect.signature(function).parameters, args, expected):
        if isinstance(a, np.ndarray):
            close(a, e, dtype)
            changed += param in ("gates", "H", "C", "dA", "dAx", "dAh", "dC", "dH_skip", "Hn")
    assert changed >= 1                       # something was written and compared


@pytest.mark.parametrize("twin", ["numba", "cuda"])
@pytest.mark.parametrize("N, V", [(1, 3), (300, 28), (1120, 28), (37, 20_000)])
def test_softmax_xent_kernel_matches_numpy(setup, N, V, twin):
    """Both twins of output.softmax_cross_entropy and its backward, up to a word vocabulary of 20,000
    (where the CUDA kernel's first pass cuts each row into 79 chunks)."""
    from scratchrnn import output
    dtype, ops, r, rng = setup
    logits, y = r(N, V) * 3, rng.integers(0, V, N)
    loss, P = output.softmax_cross_entropy(logits, y)
    dlogits = output.softmax_cross_entropy_backward(P, y)
    work, row_loss = logits.copy(), np.empty(N, dtype)
    (numba_kernels if twin == "numba" else ops).softmax_xent(work, y, row_loss)
    close(row_loss.mean(), loss, dtype)
    close(work, dlogits, dtype)


@pytest.mark.parametrize("size", [1, 255, 257, 100_003])
@pytest.mark.parametrize("theta", [1e-2, 1e6, None])
def test_sgd_update_kernels_match_the_reference_rule(setup, size, theta):
    """Sizes below, at and across one block, and one (100,003) where sum_squares' capped grid makes each
    thread walk its grid-stride loop several times; theta None (no clipping) is +inf for the kernels."""
    from scratchrnn.engines import clipping_threshold
    from scratchrnn.gpu.ops import MAX_REDUCTION_BLOCKS
    assert MAX_REDUCTION_BLOCKS * BLOCK * 2 < 100_003
    dtype, ops, r, _ = setup
    p, g = r(size), r(size)
    expected_norm = np.sqrt((g.astype(np.float64) ** 2).sum())
    scale = theta / expected_norm if theta is not None and expected_norm > theta else 1.0
    expected = p - (0.5 * scale) * g
    norm = ops.sgd_update(p, g, clipping_threshold(theta), 1, 0.5, 0.0)
    close(norm, expected_norm, dtype)
    close(p, expected, dtype)


@pytest.mark.parametrize("twin", ["numba", "cuda"])
@pytest.mark.parametrize("N, V, m", [(5, 3, 7), (1120, 28, 1024), (33, 40, 300), (1120, 20_000, 3)])
def test_row_kernels_match_numpy(setup, N, V, m, twin):
    """The gather and its scatter-add backward, up to a word vocabulary of 20,000 rows (the CUDA scatter
    visits each id's own rows only, so its work does not grow with V times N)."""
    dtype, ops, r, rng = setup
    k = numba_kernels if twin == "numba" else ops
    W, b, ids = r(V, m), r(m), rng.integers(0, V, N)
    ids[:3] = ids[0]                                               # a repeated id: its rows are summed
    out = np.empty((N, m), dtype)
    k.gather_rows_bias(W, ids, b, out)
    close(out, W[ids] + b, dtype)
    dA, dW = r(N, m), r(V, m)
    expected = dW.astype(np.float64)
    np.add.at(expected, ids, dA.astype(np.float64))
    k.scatter_add_rows(dW, ids, dA)
    close(dW, expected, dtype)


@pytest.mark.parametrize("twin", ["numba", "cuda"])
@pytest.mark.parametrize("rows, cols", [(1, 1), (7, 13), (256, 1024), (1024, 32), (9, 8), (8, 9), (40, 33), (5, 100),
                                       (100, 5)])
def test_transpose_kernels_match_numpy(setup, rows, cols, twin):
    """The layout change of the recurrent GEMMs (fast.py): whole tiles only (W_hh's shape, a step's Ah^T), a
    source smaller than one tile, and edges of rows, of columns and of both beside whole tiles."""
    dtype, ops, r, _ = setup
    src, dst = r(rows, cols), np.full((cols, rows), np.nan, dtype)
    (numba_kernels if twin == "numba" else ops).transpose(src, dst)
    np.testing.assert_array_equal(dst, src.T)


def test_launch_covers_a_partial_last_block():
    """B*n = 257: two blocks of 256, the second with 255 idle threads; nothing past the end is touched."""
    ops = KernelOps(HostKernels("float64"), np)
    buf = np.full(257 + 10, 7.0)
    H = buf[:257].reshape(1, 257)
    ops.rnn_forward(np.zeros((1, 257)), np.zeros((1, 257)), np.ones(257), H, 0)
    assert np.allclose(H, np.tanh(1.0)) and np.all(buf[257:] == 7.0)
    assert BLOCK == 256


def test_host_launch_checks_each_pointer_as_the_gpu_cannot():
    """On the GPU, RawKernel passes an array's address whatever its dtype or layout, and a scalar in as
    many bytes as its own type has (8 for a Python int), so a launcher that hands a kernel the wrong one
    computes garbage without a word. Under host emulation every argument is checked against its C type:
    real (the module's dtype), int (int32), long long (int64), double; pointers contiguous."""
    k = HostKernels("float32")
    W, b, out = np.zeros((4, 3), np.float32), np.zeros(3, np.float32), np.empty((2, 3), np.float32)
    ids, n, m = np.array([1, 3]), np.int32(2), np.int32(3)
    k.launch("gather_rows_bias", (1,), (BLOCK,), (W, ids, b, out, n, m))                    # as ops.py does
    assert np.array_equal(out, W[ids])
    bad = [((W.astype(np.float64), ids, b, out, n, m), "W must be a C-contiguous float32 array, got float64"),
           ((W, ids.astype(np.int32), b, out, n, m), "ids must be a C-contiguous int64 array, got int32"),
           ((np.zeros((4, 6), np.float32)[:, ::2], ids, b, out, n, m), "argument W must be"),   # strided
           ((W, [1, 3], b, out, n, m), "ids must be a C-contiguous int64 array, got list"),
           ((W, ids, b, out, n), "gather_rows_bias takes 6 arguments, got 5"),
           ((W, ids, b, out, 2, m), "argument rows must be a NumPy int32 scalar, got int"),
           ((W, ids, b, out, n, np.int64(3)), "argument m must be a NumPy int32 scalar, got int64")]
    for args, message in bad:
        with pytest.raises(TypeError, match=message):
            k.launch("gather_rows_bias", (1,), (BLOCK,), args)
    sumsq = np.zeros(1, np.float32)                                    # the accumulator is double
    with pytest.raises(TypeError, match="sumsq must be a C-contiguous float64 array"):
        k.launch("sum_squares", (1,), (BLOCK,), (np.ones(5, np.float32), np.int64(5), sumsq))
    p, g, sumsq = np.ones(5, np.float32), np.ones(5, np.float32), np.zeros(1)
    with pytest.raises(TypeError, match="argument theta must be a NumPy float32 scalar, got float"):
        k.launch("sgd_update", (1,), (BLOCK,), (p, g, np.int64(5), sumsq, 0.5, np.int32(1), np.float32(1),
                                                np.float32(0)))


@pytest.mark.parametrize("cell", list(CELLS))
def test_training_with_host_emulated_kernels_equals_reference(cell):
    """A few training steps of a 2-layer model: the CUDA kernels (run on the host) give the losses and
    weights of the NumPy reference."""
    corpus, vocab = load_corpus(max_tokens=2000)
    ref = RNNLM(len(vocab), 24, 2, cell, dtype="float64", engine="reference", seed=3)
    emu = use_host_cuda_kernels(RNNLM(len(vocab), 24, 2, cell, dtype="float64", engine="reference", seed=3))
    losses = {}
    for name, m in (("ref", ref), ("emu", emu)):
        it = SeqDataLoader(corpus, 8, 10, seed=0)
        losses[name] = [train_epoch(m, it, lr=1.0)[0] for _ in range(2)]
    np.testing.assert_allclose(losses["emu"], losses["ref"], rtol=1e-12)
    np.testing.assert_allclose(emu.flat_params, ref.flat_params, rtol=1e-10, atol=1e-12)
    assert not np.allclose(ref.flat_params, RNNLM(len(vocab), 24, 2, cell, dtype="float64", seed=3).flat_params)


def test_a_kernel_that_does_not_compile_is_one_clear_error(tmp_path, monkeypatch):
    bad_dir = tmp_path / "kernels"
    shutil.copytree(KERNEL_DIR, bad_dir)
    (bad_dir / "rnn.cu").write_text((bad_dir / "rnn.cu").read_text().replace("tanh(a)", "tanh(a, oops)"))
    monkeypatch.setattr(modules, "KERNEL_DIR", bad_dir)
    with pytest.raises(DeviceError, match="host build of the CUDA kernels failed: .*rnn.cu"):
        modules.build_host_library("float32", build_dir=tmp_path / "build")


def test_selftest_runs_every_check_with_host_kernels():
    """`python -m scratchrnn.selftest --device cpu` is the GPU self-test with the host-built kernels."""
    r = subprocess.run([sys.executable, "-m", "scratchrnn.selftest", "--device", "cpu"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    kernels = len(STEP_CASES) + len(list(update_cases())) + 3     # step kernels, updates, rows and softmax
    assert r.stdout.count("\nok   kernel ") == 2 * kernels and "FAIL" not in r.stdout
    assert "training steps 2-layer lstm" in r.stdout and "gradient check, 2-layer lstm" in r.stdout
    assert "tokens/s with our kernels" in r.stdout and r.stdout.rstrip().endswith("all checks passed")


def test_selftest_on_gpu_without_gpu_is_one_clear_line():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is present")
    except Exception:
        pass
    r = subprocess.run([sys.executable, "-m", "scratchrnn.selftest", "--device", "gpu"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("error: --device gpu") and len(r.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------------
# NVRTC, the compiler behind cupy.RawModule: it needs no GPU, only CuPy and the NVRTC library
# ----------------------------------------------------------------------------------------------

@pytest.fixture
def cupy_compiler(monkeypatch):
    """CuPy's own NVRTC entry point (what RawModule calls), with only its device query replaced: CuPy
    asks the GPU for its architecture; here the architecture is given. Skipped without CuPy or NVRTC."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'scratchrnn[gpu]')")
    compiler = cupy.cuda.compiler
    try:
        cupy.cuda.nvrtc.getVersion()
    except Exception as e:                               # noqa: BLE001 - any failure to load NVRTC
        pytest.skip(f"CuPy cannot load NVRTC here ({type(e).__name__})")
    if not hasattr(compiler, "_get_arch_for_options_for_nvrtc"):
        pytest.skip("this CuPy compiles differently; the test knows CuPy 13-14")
    monkeypatch.setattr(compiler, "_get_arch_for_options_for_nvrtc", lambda arch=None: (f"-arch=sm_{arch}", "cubin"))
    return compiler


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arch", ["80", "90"])
def test_every_kernel_compiles_with_nvrtc_as_rawmodule_does(cupy_compiler, dtype, arch):
    """Each .cu file, as CudaKernels hands it to RawModule, through NVRTC with CudaKernels' options plus
    the one RawModule adds (-ftz=true), to a cubin for sm_80 and sm_90 that holds every extern "C" kernel
    of the file under its own name."""
    for filename, source in modules.read_sources().items():
        cubin, _ = cupy_compiler.compile_using_nvrtc(modules.rawmodule_code(source), arch=arch, filename=filename,
                                                     options=modules.nvrtc_options(dtype) + ("-ftz=true",))
        assert cubin[:4] == b"\x7fELF", filename                          # a cubin is an ELF image
        for name in modules.kernel_signatures(source):
            assert name.encode() + b"\0" in cubin, f"{name} missing from the cubin of {filename}"


def test_an_nvrtc_error_is_the_exception_the_loader_turns_into_one_line(cupy_compiler):
    """CudaKernels catches cupy.cuda.compiler.CompileException: that is what NVRTC's errors raise."""
    source = modules.read_sources()["rnn.cu"].replace("tanh(a)", "tanh(a, oops)")
    with pytest.raises(cupy_compiler.CompileException, match="oops"):
        cupy_compiler.compile_using_nvrtc(source, options=modules.nvrtc_options("float32") + ("-ftz=true",), arch="80")
