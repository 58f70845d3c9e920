import contextlib
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchrnn.cells import CELLS
from standin_cupy import SyncCountingCupy, install_as_cupy, with_cuda_libraries

# The tests' lists of cells come from the cells' registry: a new cell is tested without editing them.
CELL_NAMES = list(CELLS)
CELL_VARIANTS = [(name, nl) for name, cell in CELLS.items() for nl in cell.NONLINEARITIES]
VARIANT_IDS = [f"{name}-{nl}" if len(CELLS[name].NONLINEARITIES) > 1 else name for name, nl in CELL_VARIANTS]


class Piped:
    """sys.stdin with a text piped in (standard input from another program): its bytes, and not a terminal."""

    def __init__(self, text):
        self.buffer = io.BytesIO(text.encode())

    def isatty(self):
        return False


def every_engine_case(test):
    """The cases a fast path is held to the reference on: every cell, depth 1-3, both iterator modes, both dtypes
    (the test takes cell, nonlinearity, num_layers, random_iter, dtype)."""
    for decorate in (pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS),
                     pytest.mark.parametrize("num_layers", [1, 2, 3]),
                     pytest.mark.parametrize("random_iter", [False, True], ids=["sequential", "random"]),
                     pytest.mark.parametrize("dtype", ["float64", "float32"])):
        test = decorate(test)
    return test


@contextlib.contextmanager
def running(*args, **popen):
    """`python -m scratchrnn *args` running, its stdout and stderr piped (text); killed at the end if it still runs.
    The command writes its stdout line by line (cmdline.with_one_line_errors), so a test can read a run's lines as
    they come."""
    p = subprocess.Popen([sys.executable, "-m", "scratchrnn", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, **popen)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()


def read_until(stream, prefix):
    """Read lines until one starts with `prefix` (a run's 'epoch    1'); that line."""
    for line in stream:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the output ended before a line starting with {prefix!r}")


def trained_on_threads(m, threads, B=6, T=7, chunks=4):
    """The parameters of model `m` after a few chunks of training (clipping, SGD, the state carried) on a fixed text,
    with NumPy's BLAS (and MKL, which follows it) on `threads` threads: whether the bits follow the threads."""
    from threadpoolctl import threadpool_limits
    from scratchrnn.data import seq_data_iter_sequential
    from scratchrnn.train import detach
    corpus = np.random.default_rng(7).integers(0, m.vocab_size, size=B * T * (chunks + 1))
    state = m.begin_state(B)
    with threadpool_limits(threads, user_api="blas"):
        for X, Y in list(seq_data_iter_sequential(corpus, B, T, np.random.default_rng(0)))[:chunks]:
            _, state, _ = m.loss_and_grad(np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), detach(state))
            m.clip_and_sgd(1.0, 1.0)
    return m.flat_params.copy()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def load_script():
    """Import a script of benchmarks/ or examples/ (they are not packages) as a module, by its path."""
    def load(path):
        spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def stand_in_cupy(monkeypatch):
    """SyncCountingCupy installed as `cupy`, with a device to name and the CUDA libraries it loads."""
    import types
    fake = SyncCountingCupy()
    fake.cuda.Device = lambda *args: types.SimpleNamespace(id=0)
    fake.cuda.runtime.getDeviceProperties = lambda i: {"name": b"stand-in GPU"}
    return with_cuda_libraries(monkeypatch, install_as_cupy(monkeypatch, fake))


@pytest.fixture
def real_cupy():
    """CuPy itself, imported before a stand-in takes its name (None where it is not installed)."""
    try:
        import cupy
        import cupy.cuda.compiler  # noqa: F401 - imported here, as the loader imports it, before it steps aside
        return cupy
    except ImportError:
        return None


ENGINES = ["reference", "fast", "cuda-on-host"]


@pytest.fixture(scope="session")
def model_on():
    """model_on(engine, *RNNLM args): a model on the reference engine, the fast engine (Numba), or the fast
    engine with our CUDA kernels built for the host ('cuda-on-host')."""
    from scratchrnn.engines import use_host_cuda_kernels
    from scratchrnn.model import RNNLM

    def make(engine, *args, **kwargs):
        m = RNNLM(*args, engine="reference" if engine == "cuda-on-host" else engine, **kwargs)
        return use_host_cuda_kernels(m) if engine == "cuda-on-host" else m
    return make
