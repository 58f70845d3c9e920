"""The GPU code path without a GPU: the CuPy loader (CudaKernels), the launchers, the fast engine and the
training loop, run on the stand-in CuPy of standin_cupy.py; what the host reads from the device, counted."""
import shutil
import sys

import numpy as np
import pytest

from conftest import CELL_NAMES
from scratchrnn.data import SeqDataLoader, load_corpus
from scratchrnn.errors import DeviceError
from scratchrnn.gpu import modules
from scratchrnn.gpu.modules import KERNEL_DIR, KERNEL_FILES
from scratchrnn.gpu.ops import KernelOps
from scratchrnn.model import RNNLM
from scratchrnn.train import evaluate, train_epoch
from standin_cupy import DeviceArray, FakeCupy, assert_real_cupy_has, install_as_cupy, with_cuda_libraries

DTYPES = {"float32": 1e-5, "float64": 1e-12}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_loader_with_a_stand_in_cupy(monkeypatch, dtype):
    """CudaKernels compiles each file once per dtype with our include path and type, finds every kernel,
    and calls it as RawKernel does; a full training step through it equals the reference."""
    fake = install_as_cupy(monkeypatch, FakeCupy())
    kernels = modules.CudaKernels(dtype)
    assert len(fake.modules) == len(KERNEL_FILES)
    assert all(f"-I{KERNEL_DIR}" in o and any(x.startswith("-DSCRATCHRNN_REAL=") for x in o) for o in fake.modules)
    assert set(kernels.functions) == {n for s in modules.read_sources().values() for n in modules.kernel_signatures(s)}
    modules.CudaKernels(dtype)
    assert len(fake.modules) == len(KERNEL_FILES)                       # cached: compiled once per process
    from scratchrnn.engines.fast import FastEngine
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
    with pytest.raises(DeviceError, match=r"CUDA kernel softmax_xent_partial, softmax_xent_rows, softmax_xent_grad "
                                          r"\(softmax_xent.cu\) failed to compile: "
                                          r".*identifier \"softmax_xent\" is undefined"):
        modules.CudaKernels("float32")



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


@pytest.mark.parametrize("cell", CELL_NAMES)
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
    fwd, bwd = model.cell.FORWARD_KERNEL, model.cell.BACKWARD_KERNEL
    assert counts[9][2][fwd] == counts[9][2][bwd] == 9 * layers
    # Once per chunk: per layer dW_hh, and for layers above the first the input projection, dW_xh and
    # dX; the output layer's forward, dW_hq and dH. Kernels: the one-hot gather and scatter, softmax_xent's
    # three passes.
    T, L = 9, layers
    assert counts[T][0] == 2 * T * L + L + 3 * (L - 1) + 3
    assert counts[T][1] == 2 * T * L + 5


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
    from scratchrnn.selftest import step_cases, update_cases
    kernels = len(list(step_cases())) + len(list(update_cases())) + 3
    assert out.count("\nok   kernel ") == 2 * kernels and "FAIL" not in out
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
    assert "parameters, fast (CUDA kernels)) on" in out and "tokens/sec on gpu:0 (stand-in GPU)" in out
    assert "\ntime traveller" in out and "\ntraveller" in out
    run = tmp_path / "run"
    cli.main(["train", "--device", "gpu", "--epochs", "2", "--hidden", "16", "--max-tokens", "2000",
              "--out", str(run)])                                         # returns; errors exit non-zero
    assert (run / "last.npz").is_file() and "on gpu:0 (stand-in GPU)" in capsys.readouterr().out
    cli.main(["generate", "--from", str(run), "--prefix", "time", "--length", "20"])    # on the CPU
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("time")
    (tmp_path / "test.txt").write_text("the time traveller for so it will be convenient to speak of him " * 20)
    scores = []
    for device in ("gpu", "cpu"):                                   # evaluate, on either: the same perplexity
        cli.main(["evaluate", "--from", str(run), "--corpus", str(tmp_path / "test.txt"), "--device", device])
        scores.append(float(capsys.readouterr().out.split()[1]))
    assert scores[0] == pytest.approx(scores[1], rel=1e-3) and scores[0] > 1
    assert_real_cupy_has(stand_in_cupy, real_cupy)


def test_a_model_too_big_for_the_gpu_is_refused_before_allocating(stand_in_cupy):
    """The GPU's free memory (cupy.cuda.runtime.memGetInfo; the stand-in has 16 GiB) is checked first."""
    from scratchrnn.errors import ConfigError
    with pytest.raises(ConfigError, match=r"needs about 321\.9 GiB of memory; this machine has 16\.0 GiB available "
                                          r"on the GPU"):
        RNNLM(28, 60000, 2, "lstm", device="gpu")
