"""Our CUDA kernels without a GPU: every .cu file compiles with nvcc for sm_80 and sm_90, and the same
sources built for the host run through the very same launchers (ops.py) against the NumPy reference."""
import shutil
import sys
import subprocess

import numpy as np
import pytest

from scratchrnn.cells.common import sigmoid
from scratchrnn.data import SeqDataLoader, load_corpus
from scratchrnn.errors import DeviceError
from scratchrnn.fast import use_host_cuda_kernels
from scratchrnn.gpu import modules
from scratchrnn.gpu.modules import KERNEL_DIR, KERNEL_FILES, HostKernels, kernel_signatures
from scratchrnn.gpu.ops import BLOCK, KernelOps
from scratchrnn.model import RNNLM
from scratchrnn.train import evaluate, train_epoch

DTYPES = {"float32": 1e-5, "float64": 1e-12}
SIZES = [(3, 5), (32, 256), (7, 300)]          # B*n below, at and across the block size of 256


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


def test_every_kernel_has_a_launcher_and_a_signature():
    names = {n for f in KERNEL_FILES for n in kernel_signatures((KERNEL_DIR / f).read_text())}
    assert names == {"lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "rnn_forward",
                     "rnn_backward", "softmax_xent", "sum_squares", "clip_sgd", "gather_rows_bias",
                     "scatter_add_rows"}
    assert kernel_signatures((KERNEL_DIR / "rnn.cu").read_text())["rnn_forward"][0] == ("const real *", "Ax")


def close(actual, expected, dtype):
    tol = DTYPES[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * max(1.0, np.abs(expected).max()))


@pytest.fixture(params=list(DTYPES))
def setup(request):
    dtype = request.param
    rng = np.random.default_rng(5)
    return dtype, KernelOps(HostKernels(dtype), np), lambda *s: rng.standard_normal(s).astype(dtype), rng


@pytest.mark.parametrize("B, n", SIZES)
def test_lstm_kernels_match_numpy(setup, B, n):
    dtype, ops, r, _ = setup
    Ax, Ah, b, C_prev = r(B, 4 * n), r(B, 4 * n), r(4 * n), r(B, n)
    gates, C, H = np.empty((B, 4 * n), dtype), np.empty((B, n), dtype), np.empty((B, n), dtype)
    ops.lstm_forward(Ax, Ah, b, C_prev, gates, C, H)
    A = Ax + Ah + b
    I, F, G, O = sigmoid(A[:, :n]), sigmoid(A[:, n:2 * n]), np.tanh(A[:, 2 * n:3 * n]), sigmoid(A[:, 3 * n:])
    close(gates, np.concatenate([I, F, G, O], axis=1), dtype)
    close(C, F * C_prev + I * G, dtype)
    close(H, O * np.tanh(F * C_prev + I * G), dtype)
    dH_above, dH_rec, dC_next = r(B, n), r(B, n), r(B, n)
    dC, dA = dC_next.copy(), np.empty((B, 4 * n), dtype)
    ops.lstm_backward(dH_above, dH_rec, dC, gates, C_prev, C, dA)
    dH = dH_above + dH_rec
    tanhC = np.tanh(C)
    dc = dC_next + dH * O * (1 - tanhC ** 2)
    close(dA, np.concatenate([dc * G * I * (1 - I), dc * C_prev * F * (1 - F), dc * I * (1 - G ** 2),
                              dH * tanhC * O * (1 - O)], axis=1), dtype)
    close(dC, dc * F, dtype)


@pytest.mark.parametrize("B, n", SIZES)
def test_gru_kernels_match_numpy(setup, B, n):
    dtype, ops, r, _ = setup
    Ax, Ah, b, H_prev = r(B, 3 * n), r(B, 3 * n), r(3 * n), r(B, n)
    gates, Hn, H = np.empty((B, 3 * n), dtype), np.empty((B, n), dtype), np.empty((B, n), dtype)
    ops.gru_forward(Ax, Ah, b, H_prev, gates, Hn, H)
    Ahb = Ah + b
    R, Z = sigmoid(Ax[:, :n] + Ahb[:, :n]), sigmoid(Ax[:, n:2 * n] + Ahb[:, n:2 * n])
    N = np.tanh(Ax[:, 2 * n:] + R * Ahb[:, 2 * n:])
    close(gates, np.concatenate([R, Z, N], axis=1), dtype)
    close(Hn, Ahb[:, 2 * n:], dtype)
    close(H, (1 - Z) * N + Z * H_prev, dtype)
    dH_above, dH_rec, skip = r(B, n), r(B, n), r(B, n)
    dH_skip, dAx, dAh = skip.copy(), np.empty((B, 3 * n), dtype), np.empty((B, 3 * n), dtype)
    ops.gru_backward(dH_above, dH_rec, dH_skip, gates, Hn, H_prev, dAx, dAh)
    dH = dH_above + dH_rec + skip
    dAn = dH * (1 - Z) * (1 - N ** 2)
    dAr, dAz = dAn * Hn * R * (1 - R), dH * (H_prev - N) * Z * (1 - Z)
    close(dAx, np.concatenate([dAr, dAz, dAn], axis=1), dtype)
    close(dAh, np.concatenate([dAr, dAz, dAn * R], axis=1), dtype)
    close(dH_skip, dH * Z, dtype)


@pytest.mark.parametrize("relu", [0, 1])
@pytest.mark.parametrize("B, n", SIZES)
def test_rnn_kernels_match_numpy(setup, B, n, relu):
    dtype, ops, r, _ = setup
    Ax, Ah, b = r(B, n), r(B, n), r(n)
    H = np.empty((B, n), dtype)
    ops.rnn_forward(Ax, Ah, b, H, relu)
    A = Ax + Ah + b
    close(H, np.maximum(A, 0) if relu else np.tanh(A), dtype)
    dH_above, dH_rec, dA = r(B, n), r(B, n), np.empty((B, n), dtype)
    ops.rnn_backward(dH_above, dH_rec, H, dA, relu)
    close(dA, (dH_above + dH_rec) * ((H > 0) if relu else (1 - H ** 2)), dtype)


@pytest.mark.parametrize("N, V", [(1, 3), (300, 28), (1120, 28)])
def test_softmax_xent_kernel_matches_numpy(setup, N, V):
    from scratchrnn import output
    dtype, ops, r, rng = setup
    logits, y = r(N, V) * 3, rng.integers(0, V, N)
    loss, P = output.softmax_cross_entropy(logits, y)
    dlogits = output.softmax_cross_entropy_backward(P, y)
    work, row_loss = logits.copy(), np.empty(N, dtype)
    ops.softmax_xent(work, y, row_loss)
    close(row_loss.mean(), loss, dtype)
    close(work, dlogits, dtype)


@pytest.mark.parametrize("size", [1, 255, 257, 100_003])
@pytest.mark.parametrize("theta", [1e-2, 1e6, 0.0])
def test_clip_sgd_kernels_match_numpy(setup, size, theta):
    """Sizes below, at and across one block, and one (100,003) where sum_squares' capped grid makes each
    thread walk its grid-stride loop several times."""
    from scratchrnn.gpu.ops import MAX_REDUCTION_BLOCKS
    assert MAX_REDUCTION_BLOCKS * BLOCK * 2 < 100_003
    dtype, ops, r, _ = setup
    p, g = r(size), r(size)
    expected_norm = np.sqrt((g.astype(np.float64) ** 2).sum())
    scale = min(1.0, theta / (expected_norm + 1e-12)) if theta > 0 else 1.0
    expected = p - (0.5 * scale) * g
    norm = ops.clip_sgd(p, g, 0.5, theta)
    close(norm, expected_norm, dtype)
    close(p, expected, dtype)


@pytest.mark.parametrize("N, V, m", [(5, 3, 7), (1120, 28, 1024), (33, 40, 300)])
def test_row_kernels_match_numpy(setup, N, V, m):
    dtype, ops, r, rng = setup
    W, b, ids = r(V, m), r(m), rng.integers(0, V, N)
    out = np.empty((N, m), dtype)
    ops.gather_rows_bias(W, ids, b, out)
    close(out, W[ids] + b, dtype)
    dA, dW = r(N, m), np.zeros((V, m), dtype)
    ops.scatter_add_rows(dW, ids, dA)
    expected = np.zeros((V, m))
    np.add.at(expected, ids, dA.astype(np.float64))
    close(dW, expected, dtype)


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
           ((W, ids, b, out, 2, m), "argument N must be a NumPy int32 scalar, got int"),
           ((W, ids, b, out, n, np.int64(3)), "argument m must be a NumPy int32 scalar, got int64")]
    for args, message in bad:
        with pytest.raises(TypeError, match=message):
            k.launch("gather_rows_bias", (1,), (BLOCK,), args)
    sumsq = np.zeros(1, np.float32)                                    # the accumulator is double
    with pytest.raises(TypeError, match="sumsq must be a C-contiguous float64 array"):
        k.launch("sum_squares", (1,), (BLOCK,), (np.ones(5, np.float32), np.int64(5), sumsq))
    p, g, sumsq = np.ones(5, np.float32), np.ones(5, np.float32), np.zeros(1)
    with pytest.raises(TypeError, match="argument lr must be a NumPy float32 scalar, got float"):
        k.launch("clip_sgd", (1,), (BLOCK,), (p, g, np.int64(5), sumsq, 0.5, np.float32(1)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
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
    assert r.stdout.count("\nok   kernel ") == 20 and "FAIL" not in r.stdout
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


class FakeCupy:
    """Just enough of CuPy's API for CudaKernels: RawModule compiles nothing; its functions launch the
    host build of the same kernel with the same (grid, block, args), so the GPU loader and its calling
    convention are exercised without a GPU."""

    class CompileException(Exception):
        pass

    def __init__(self, fail_on=None):
        import collections
        import types
        self.fail_on, self.modules, self.codes, self.launches = fail_on, [], [], collections.Counter()
        self.cuda = types.SimpleNamespace(compiler=types.SimpleNamespace(CompileException=self.CompileException))
        outer = self

        class RawModule:
            def __init__(self, code, options):
                outer.modules.append(options)
                outer.codes.append(code)
                real = [o for o in options if o.startswith("-DSCRATCHRNN_REAL=")][0].split("=")[1]
                self.host = HostKernels({"float": "float32", "double": "float64"}[real])
                self.code = code

            def get_function(self, name):
                if outer.fail_on and outer.fail_on in self.code:
                    raise outer.CompileException(f"kernel.cu(12): error: identifier \"{outer.fail_on}\" is undefined")
                def launch(grid, block, args):
                    outer.check_arguments(name, args)
                    outer.launches[name] += 1
                    self.host.launch(name, grid, block, args)
                return launch

        self.RawModule = RawModule

    def check_arguments(self, name, args):
        """Here any NumPy array may stand for a device array."""


def install_as_cupy(monkeypatch, fake):
    """`fake` becomes `cupy` for one test; a real CuPy imported earlier steps aside (its lazily loaded
    parts too, which would otherwise import from the fake) and comes back afterwards."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupyx", "cupy_backends")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(modules, "_CUDA_CACHE", {})
    return fake


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_loader_with_a_stand_in_cupy(monkeypatch, dtype):
    """CudaKernels compiles each file once per dtype with our include path and type, finds every kernel,
    and calls it as RawKernel does; a full training step through it equals the reference."""
    fake = install_as_cupy(monkeypatch, FakeCupy())
    kernels = modules.CudaKernels(dtype)
    assert len(fake.modules) == len(KERNEL_FILES)
    assert all(f"-I{KERNEL_DIR}" in o and any(x.startswith("-DSCRATCHRNN_REAL=") for x in o) for o in fake.modules)
    assert len(kernels.functions) == 11
    modules.CudaKernels(dtype)
    assert len(fake.modules) == len(KERNEL_FILES)                       # cached: compiled once per process
    from scratchrnn.fast.engine import FastEngine
    ref = RNNLM(11, 20, 2, "lstm", dtype=dtype, engine="reference", seed=4)
    dev = RNNLM(11, 20, 2, "lstm", dtype=dtype, engine="reference", seed=4)
    dev.engine = FastEngine(dev, KernelOps(kernels, np), "fast (CUDA kernels)")
    X = np.random.default_rng(0).integers(0, 11, (6, 3))
    l_ref, _, _ = ref.loss_and_grad(X, X, ref.begin_state(3))
    l_dev, _, _ = dev.loss_and_grad(X, X, dev.begin_state(3))
    assert abs(float(l_ref) - float(l_dev)) <= 1e-5 * float(l_ref)
    from scratchrnn.gradcheck import relative_error
    assert relative_error(ref.flat_grads, dev.flat_grads) < DTYPES[dtype] * 10


def test_an_edited_header_changes_the_code_rawmodule_is_handed(monkeypatch, tmp_path):
    """CuPy's on-disk kernel cache keys on the code and options RawModule is handed, not on the files the
    code includes: an edit of common.cuh alone must change every file's code, or the cubins built from
    the old header would be loaded. The code is the .cu source itself, with that hash appended."""
    fake = install_as_cupy(monkeypatch, FakeCupy())
    modules.CudaKernels("float32")
    before = {f: modules.rawmodule_code(s) for f, s in modules.read_sources().items()}
    assert fake.codes == list(before.values())
    edited = tmp_path / "kernels"
    shutil.copytree(KERNEL_DIR, edited)
    header = (edited / "common.cuh").read_text()
    (edited / "common.cuh").write_text(header.replace("real(0.5) * x", "x * real(0.5)"))
    monkeypatch.setattr(modules, "KERNEL_DIR", edited)
    after = {f: modules.rawmodule_code(s) for f, s in modules.read_sources().items()}
    for f, source in modules.read_sources().items():
        assert after[f] != before[f] and after[f].startswith(source) and before[f].startswith(source)


def test_cuda_compile_error_names_the_kernel(monkeypatch):
    install_as_cupy(monkeypatch, FakeCupy(fail_on="softmax_xent"))
    with pytest.raises(DeviceError, match=r"CUDA kernel softmax_xent \(softmax_xent.cu\) failed to compile: "
                                          r".*identifier \"softmax_xent\" is undefined"):
        modules.CudaKernels("float32")


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


# ----------------------------------------------------------------------------------------------
# Host synchronisation on the GPU path, counted with a stand-in CuPy whose arrays log every read
# ----------------------------------------------------------------------------------------------

def host_read(how, read):
    """A DeviceArray method that logs a host read (`how`), then does `read` on the values."""
    def method(self, *args):
        DeviceArray.reads.append(how)
        return read(np.asarray(self), *args)
    return method


class DeviceArray(np.ndarray):
    """A NumPy array playing a CuPy array: every way of reading its values on the host (float(),
    int(), bool(), .item(), .get(), printing) is logged as a device-to-host synchronisation. As in
    CuPy, indexing down to one element gives a 0-d array, not a host scalar."""

    reads = []
    __float__, __int__, __index__ = host_read("float", float), host_read("int", int), host_read("index", int)
    __bool__ = host_read("bool", bool)
    item, tolist = host_read("item", np.ndarray.item), host_read("tolist", np.ndarray.tolist)
    get = host_read("get", np.array)
    __repr__ = __str__ = __format__ = host_read("repr", lambda values, *spec: repr(values))

    def __getitem__(self, key):
        out = super().__getitem__(key)
        return out if isinstance(out, np.ndarray) else np.asarray(out).view(DeviceArray)


class SyncCountingCupy(FakeCupy):
    """FakeCupy (kernels through the host build) whose array functions make DeviceArrays; `uploads`
    counts host arrays copied to the "device" (cupy.asarray of a host array)."""

    def __init__(self):
        import collections
        import types
        super().__init__()
        self.uploads, self.calls, self.served = 0, collections.Counter(), set()
        self.cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)

    def __getattr__(self, name):                       # everything else: NumPy's, results on the "device"
        if name.startswith("_"):                       # not numpy's __path__, __file__...: a module of its own
            raise AttributeError(name)
        self.served.add(name)
        f = getattr(np, name)
        if not callable(f) or isinstance(f, type):
            return f

        def on_device(*args, **kwargs):
            self.calls[name] += 1
            out = f(*args, **kwargs)
            return out.view(DeviceArray) if isinstance(out, np.ndarray) and not isinstance(out, DeviceArray) else out
        return on_device

    def asarray(self, a, dtype=None):
        if not isinstance(a, DeviceArray):
            self.uploads += 1
        return np.array(a, dtype=dtype).view(DeviceArray)

    def get_array_module(self, *args):
        return self

    def check_arguments(self, name, args):
        """As RawKernel does: a host array handed to a kernel is a TypeError, not an address."""
        for a in args:
            if isinstance(a, np.ndarray) and not isinstance(a, DeviceArray):
                raise TypeError(f"{name}: Unsupported type {type(a)} (a host array given to a GPU kernel)")


def with_cuda_libraries(monkeypatch, fake):
    """What _import_cupy checks besides the GPU count: NVRTC answers, cupy.cuda.cublas imports."""
    import types
    fake.cuda.nvrtc = types.SimpleNamespace(getVersion=lambda: (12, 9))
    monkeypatch.setitem(sys.modules, "cupy.cuda.cublas", types.ModuleType("cupy.cuda.cublas"))
    return fake


@pytest.fixture
def stand_in_cupy(monkeypatch):
    """SyncCountingCupy installed as `cupy`, with a device to name and the CUDA libraries it loads."""
    import types
    fake = SyncCountingCupy()
    fake.cuda.Device = lambda *args: types.SimpleNamespace(id=0)
    fake.cuda.runtime.getDeviceProperties = lambda i: {"name": b"stand-in GPU"}
    return with_cuda_libraries(monkeypatch, install_as_cupy(monkeypatch, fake))


# What the stand-in plays besides NumPy's functions (those it serves are in its `served`), as CuPy spells it.
STAND_IN_API = ("RawModule", "asarray", "get_array_module", "cuda.Device", "cuda.compiler.CompileException",
                "cuda.runtime.getDeviceCount", "cuda.runtime.getDeviceProperties", "cuda.nvrtc.getVersion")


def assert_real_cupy_has(fake, real_cupy):
    """The stand-in lends the GPU path any NumPy function; real CuPy must have each one the path asked for,
    and the attributes the stand-in plays, or the first GPU run would stop at an AttributeError."""
    if real_cupy is None:                      # CI installs CuPy; without it there is nothing to compare with
        return
    assert fake.served, "the stand-in served nothing: the comparison would prove nothing"
    for path in sorted(fake.served) + list(STAND_IN_API):
        target = real_cupy
        for part in path.split("."):
            assert hasattr(target, part), f"the GPU path uses cupy.{path}, which CuPy {real_cupy.__version__} lacks"
            target = getattr(target, part)


@pytest.fixture
def real_cupy():
    """CuPy itself, imported before a stand-in takes its name (None where it is not installed)."""
    try:
        import cupy
        import cupy.cuda.compiler  # noqa: F401 - imported here, as the loader imports it, before it steps aside
        return cupy
    except ImportError:
        return None


def test_a_cupy_that_cannot_load_its_cuda_libraries_is_one_clear_line(monkeypatch):
    """CuPy installed without the CUDA toolkit imports and counts the GPUs, then fails at the first kernel
    compile (NVRTC) or matrix product (cuBLAS). --device gpu finds that out first, in one line naming the
    extras that install CuPy with the libraries; --device auto then picks the CPU and gives that reason."""
    import types
    from scratchrnn import backend
    fake = install_as_cupy(monkeypatch, types.SimpleNamespace(cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))))

    def missing():
        raise RuntimeError('Failure finding "libnvrtc.so.13 or libnvrtc.so.12": No such file\nmore')
    fake.cuda.nvrtc = types.SimpleNamespace(getVersion=missing)
    with pytest.raises(DeviceError, match=r"^--device gpu: CuPy cannot load a CUDA library \(Failure finding "
                                          r"\"libnvrtc.so.13 or libnvrtc.so.12\": No such file\); pip install "
                                          r"'scratchrnn\[gpu\]' \(CUDA 12\) or 'scratchrnn\[gpu-cuda13\]'"):
        backend.resolve_device("gpu")
    assert backend.resolve_device("auto") == "cpu" and "libnvrtc" in backend.gpu_unusable_reason()

    with_cuda_libraries(monkeypatch, fake)                            # NVRTC there, cuBLAS not
    monkeypatch.setitem(sys.modules, "cupy.cuda.cublas", None)        # import of it fails, as without libcublas
    with pytest.raises(DeviceError, match=r"cannot load a CUDA library \(.*cupy.cuda.cublas"):
        backend.resolve_device("gpu")
    monkeypatch.delitem(sys.modules, "cupy.cuda.cublas")
    with_cuda_libraries(monkeypatch, fake)
    assert backend.resolve_device("gpu") == "gpu" and backend.gpu_unusable_reason() is None


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("random_iter", [False, True], ids=["sequential", "random"])
def test_a_gpu_epoch_reads_the_device_once(stand_in_cupy, cell, random_iter):
    """The GPU code path (CudaKernels, KernelOps, the fast engine, train_epoch) through a whole epoch:
    the host reads the device once (the epoch's loss, at the end) and uploads twice (the epoch's
    inputs and targets). A read per step, here the norm that on_step could print, is counted."""
    fake = stand_in_cupy
    corpus, vocab = load_corpus()
    loader = SeqDataLoader(corpus[:2000], 8, 10, random_iter, seed=0)
    model = RNNLM(len(vocab), 16, 2, cell, device="gpu", engine="fast")
    assert model.engine.name == "fast (CUDA kernels)" and isinstance(model.flat_params, DeviceArray)
    DeviceArray.reads.clear()
    fake.uploads = 0
    ppl, _ = train_epoch(model, loader, 1.0, 1.0, random_iter)
    assert DeviceArray.reads == ["float"] and fake.uploads == 2
    assert 1 < ppl < len(vocab) * 2
    DeviceArray.reads.clear()
    steps = []
    train_epoch(model, loader, 1.0, 1.0, random_iter, on_step=lambda pos, norm: steps.append(float(norm)))
    assert len(steps) > 3 and DeviceArray.reads == ["float"] * (len(steps) + 1)
    DeviceArray.reads.clear()
    assert 1 < evaluate(model, corpus[2000:3000], 8, 10) < len(vocab) * 2       # validation: one read too
    assert DeviceArray.reads == ["float"]
    host = np.zeros((2, 3), model.flat_params.dtype)              # and every kernel above got device arrays:
    with pytest.raises(TypeError, match="host array given to a GPU kernel"):    # a host one would stop it
        model.engine.ops.softmax_xent(host, fake.asarray(np.zeros(2, np.int64)), fake.zeros(2, host.dtype))


@pytest.mark.parametrize("cell, layers", [("lstm", 2), ("gru", 1), ("rnn", 3)])
def test_gpu_cost_of_one_time_step_of_one_layer(stand_in_cupy, cell, layers):
    """What README says one time step of one layer costs on the GPU, counted: forward 1 GEMM + 1
    kernel, backward 1 kernel + 1 GEMM. Two chunk lengths, the difference divided by the extra steps."""
    fake = stand_in_cupy
    model = RNNLM(11, 8, layers, cell, device="gpu", engine="fast")
    counts = {}
    for T in (4, 9):
        X = fake.asarray(np.random.default_rng(T).integers(0, 11, (T, 3)))
        model.loss_and_grad(X, X, model.begin_state(3))                       # workspace for this T
        fake.calls.clear()
        fake.launches.clear()
        model.loss_and_grad(X, X, model.begin_state(3))
        counts[T] = (fake.calls["matmul"], sum(fake.launches.values()), dict(fake.launches))
    per_step = [(counts[9][i] - counts[4][i]) / (5 * layers) for i in (0, 1)]
    assert per_step == [2, 2]
    fwd, bwd = {"lstm": ("lstm_forward", "lstm_backward"), "gru": ("gru_forward", "gru_backward"),
                "rnn": ("rnn_forward", "rnn_backward")}[cell]
    assert counts[9][2][fwd] == counts[9][2][bwd] == 9 * layers
    # Once per chunk: per layer dW_hh, and for layers above the first the input projection, dW_xh and
    # dX; the output layer's forward, dW_hq and dH. Kernels: the one-hot gather and scatter, softmax_xent.
    T, L = 9, layers
    assert counts[T][0] == 2 * T * L + L + 3 * (L - 1) + 3
    assert counts[T][1] == 2 * T * L + 3


def test_selftest_gpu_branch_on_a_stand_in_cupy(real_cupy, stand_in_cupy, monkeypatch, capsys):
    """`python -m scratchrnn.selftest --device gpu`, every GPU-only line of it (CudaKernels, device
    arrays into the comparisons, the gradient check on the device, the timing), run in-process on the
    stand-in CuPy: the first real GPU run should find nothing but the GPU to test."""
    from scratchrnn import selftest
    monkeypatch.setattr(selftest.time_deep_lstm, "__defaults__", (2,))      # 2 timed steps, not 50
    with pytest.raises(SystemExit) as exit_status:
        selftest.main(["--device", "gpu"])
    out = capsys.readouterr().out
    assert exit_status.value.code == 0, out
    assert out.startswith("scratchrnn self-test on gpu:0 (stand-in GPU)\n")
    assert out.count("\nok   kernel ") == 20 and "FAIL" not in out
    assert "training steps 2-layer lstm vs CPU reference" in out and "gradient check, 2-layer gru" in out
    assert "tokens/s with our kernels" in out and "PyTorch cuDNN LSTM: " in out
    assert out.rstrip().endswith("all checks passed")
    assert_real_cupy_has(stand_in_cupy, real_cupy)


def test_the_headline_command_on_a_stand_in_cupy(real_cupy, stand_in_cupy, capsys, tmp_path):
    """`python examples/train_deep_lstm.py --device gpu` (small and short) and `scratchrnn train
    --device gpu` writing a checkpoint that `generate` reads, through the GPU code path on the stand-in."""
    from scratchrnn import book, cli
    book.main("deep LSTM", {"cell": "lstm", "layers": 2, "hidden": 16, "lr": 2.0, "init": "pytorch"},
              ["--device", "gpu", "--epochs", "2", "--max-tokens", "2000"])
    out = capsys.readouterr().out
    assert "fast (CUDA kernels) engine" in out and "tokens/sec on gpu:0 (stand-in GPU)" in out
    assert "\ntime traveller" in out and "\ntraveller" in out
    run = tmp_path / "run"
    cli.main(["train", "--device", "gpu", "--epochs", "2", "--hidden", "16", "--max-tokens", "2000",
              "--out", str(run)])                                         # returns; errors exit non-zero
    assert (run / "last.npz").is_file() and "on gpu:0 (stand-in GPU)" in capsys.readouterr().out
    cli.main(["generate", "--from", str(run), "--prefix", "time", "--length", "20"])    # on the CPU
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("time")
    assert_real_cupy_has(stand_in_cupy, real_cupy)
