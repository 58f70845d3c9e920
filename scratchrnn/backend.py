"""The array module: one switch between NumPy (CPU) and CuPy (GPU).

Model code never imports numpy or cupy directly for its math; it asks for `xp`:

    xp = get_array_module("cpu")   # numpy
    xp = get_array_module("gpu")   # cupy (imported only here, only when asked for)

Both libraries share one API for everything scratchrnn uses, so each equation is written once.
CuPy is imported lazily: the CPU path never needs it installed.
"""
import functools
import importlib
import os
import platform

import numpy as np

from .errors import ConfigError, DeviceError

DEVICES = ("auto", "cpu", "gpu")


GPU_EXTRAS = "pip install 'scratchrnn[gpu]' (CUDA 12) or 'scratchrnn[gpu-cuda13]' (CUDA 13)"


def _import_cupy():
    """Import CuPy and check that it sees a GPU and can load the two CUDA libraries the GPU path needs:
    NVRTC (compiles our kernels) and cuBLAS (the matrix products). One clear line if not."""
    try:
        import cupy
    except ImportError:
        raise DeviceError(f"--device gpu needs CuPy, which is not installed: {GPU_EXTRAS}") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise DeviceError(f"--device gpu: CuPy finds no usable GPU ({first_line(e)})") from None
    if count < 1:
        raise DeviceError("--device gpu: CuPy finds no GPU on this machine")
    try:                    # CuPy loads these lazily; a CuPy installed without the CUDA toolkit lacks them
        cupy.cuda.nvrtc.getVersion()
        importlib.import_module("cupy.cuda.cublas")
    except Exception as e:
        raise DeviceError(f"--device gpu: CuPy cannot load a CUDA library ({first_line(e)}); "
                          f"{GPU_EXTRAS} installs CuPy with them") from None
    return cupy


def first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def gpu_unusable_reason():
    """None when --device gpu would work; else the one line it would stop with."""
    try:
        _import_cupy()
    except DeviceError as e:
        return str(e)
    return None


def gpu_available():
    """True when CuPy is installed, sees at least one GPU and can load the CUDA libraries it needs."""
    return gpu_unusable_reason() is None


def resolve_device(device="auto"):
    """'auto' -> 'gpu' when CuPy finds a GPU, else 'cpu'. 'gpu' is checked and fails clearly."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "gpu" if gpu_available() else "cpu"
    if device == "gpu":
        _import_cupy()
    return device


def get_array_module(device):
    """numpy for 'cpu', cupy for 'gpu'."""
    if device == "cpu":
        return np
    if device == "gpu":
        return _import_cupy()
    raise DeviceError(f"unknown device {device!r}; expected 'cpu' or 'gpu'")


def device_name(device):
    """A human description of the device, for the book's 'tokens/sec on DEVICE' line."""
    if device == "gpu":
        cupy = _import_cupy()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        return f"gpu:0 ({name.decode() if isinstance(name, bytes) else name})"
    return "cpu"


def cpu_model():
    """This machine's CPU as Linux names it (/proc/cpuinfo), with its family, model and stepping where the name
    alone does not tell two CPUs apart (under a hypervisor every EPYC is "AMD EPYC": family 25 is Zen 3 or 4,
    26 is Zen 5), or what the platform module knows: benchmark figures depend on it, so every benchmark prints
    it beside them."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = {}
            for line in f:
                if not line.strip():
                    break                                             # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        fields = {}
    name = fields.get("model name") or platform.processor() or platform.machine()
    numbers = [f"{key.replace('cpu ', '')} {fields[key]}" for key in ("cpu family", "model", "stepping")
               if key in fields]
    return f"{name} ({', '.join(numbers)})" if numbers else name


@functools.lru_cache(maxsize=None)
def processor(device):
    """The processor a model of `device` computes on: cpu_model() or the GPU's device_name (a checkpoint keeps it: on
    another, other kernels may add the sums in other orders). Asked once a process: every checkpoint writes it."""
    return cpu_model() if device == "cpu" else device_name(device)


# Environment variables that make OpenBLAS run other kernels than the ones it would pick for this CPU (set on
# some machines because older OpenBLAS builds crashed on their CPUs; OPENBLAS_CORETYPE=Haswell runs AVX2
# kernels on a CPU with AVX-512, at half its float32 peak where the CPU has full-width AVX-512 units).
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@functools.lru_cache(maxsize=None)
def numpy_blas_controller():
    """threadpoolctl's controller of NumPy's BLAS as it is loaded: NumPy's own, not another library's loaded beside
    it (torch's MKL); None where none is found."""
    from threadpoolctl import ThreadpoolController
    found = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    numpy_home = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    ours = [c for c in found if os.path.abspath(c.filepath or "").startswith(
        os.path.join(numpy_home, "numpy"))] or found             # numpy/ or numpy.libs/ beside it
    return ours[0] if ours else None


@functools.lru_cache(maxsize=None)
def numpy_blas():
    """NumPy's BLAS (numpy_blas_controller): a dict with library ("OpenBLAS"), version and architecture (the kernels
    it runs: "Haswell", "SkylakeX", ...; None where the library does not say); None where none is found. Fixed for
    the process: OpenBLAS picks its kernels when it is loaded."""
    controller = numpy_blas_controller()
    if controller is None:
        return None
    info = controller.info()
    library = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS"}.get(info["internal_api"], info["internal_api"])
    return {"library": library, "version": info.get("version"), "architecture": info.get("architecture")}


def numpy_blas_threads():
    """How many threads NumPy's BLAS runs a GEMM on now (threadpool_limits changes it; about 1 us to ask), or 1 where
    no BLAS is found."""
    controller = numpy_blas_controller()
    return 1 if controller is None else controller.get_num_threads()


def numpy_blas_threads_change_sums():
    """Whether NumPy's BLAS ends a product with other bits on another count of threads: MKL's does (a NumPy built with
    it; measured for the MKL the fast engine calls, mkl.py); OpenBLAS and BLIS split a product over its result's rows
    and columns, each sum whole on one thread."""
    return (numpy_blas() or {}).get("library") == "MKL"


def numpy_blas_kernels():
    """The kernels NumPy's BLAS runs ("Haswell", "SkylakeX", ...), or None where it does not say or none is found."""
    return (numpy_blas() or {}).get("architecture")


def blas_kernel():
    """(NumPy's BLAS in words, e.g. "OpenBLAS 0.3.31, SkylakeX kernels"; which of BLAS_OVERRIDES are set, e.g.
    "OPENBLAS_CORETYPE=Haswell", or ""): a speed figure depends on both."""
    blas = numpy_blas()
    if blas is None:
        described = "no BLAS found by threadpoolctl"
    else:
        described = f"{blas['library']} {blas['version'] or ''}".strip() + (
            f", {blas['architecture']} kernels" if blas["architecture"] else "")
    return described, variables_set(BLAS_OVERRIDES)


def variables_set(names):
    """Those of the environment variables `names` that are set, as "NAME=value NAME=value" ("" for none)."""
    return " ".join(f"{name}={os.environ[name]}" for name in names if name in os.environ)


def to_numpy(a):
    """Copy an array of either library to host NumPy (no-op for NumPy arrays)."""
    if isinstance(a, np.ndarray):
        return a
    return a.get()


def scatter_add_rows(xp, target, rows, values):
    """target[rows[i]] += values[i] with repeated rows summed (np.add.at / cupyx.scatter_add).

    This is the backward of a row gather `target[rows]`, which is how a one-hot input times a
    weight matrix is computed without ever building the one-hot matrix.
    """
    if xp is np:
        np.add.at(target, rows, values)
    else:
        import cupyx
        cupyx.scatter_add(target, rows, values)


def xp_of(a):
    """The array module an array belongs to (Chainer's `get_array_module`)."""
    if isinstance(a, np.ndarray):
        return np
    import cupy
    return cupy.get_array_module(a)


def available_memory(device):
    """Bytes this process can still allocate on the device: the GPU's free memory, or on the CPU the
    kernel's MemAvailable (Linux), else the physical memory; None where neither can be read."""
    if device == "gpu":
        return int(_import_cupy().cuda.runtime.memGetInfo()[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1024


def check_memory(needed, device, what, hint=""):
    """Refuse, in one line and before any allocation, what would not fit in the memory the device has (hint: what
    the user can do instead, after it)."""
    free = available_memory(device)
    if free is not None and needed > free:
        raise ConfigError(f"{what} needs about {human_bytes(needed)} of memory; this machine has "
                          f"{human_bytes(free)} available{' on the GPU' if device == 'gpu' else ''}{hint}")
