"""Loading our CUDA C kernels (scratchrnn/kernels/*.cu) two ways, behind one `launch` call.

    CudaKernels(dtype)   cupy.RawModule per file, compiled once per process (and cached by CuPy)
    HostKernels(dtype)   the same sources built for the CPU with g++ (kernels/host_shim.h), called
                         through ctypes, each "thread" run in turn: the GPU code tested without a GPU

Both expose `launch(name, grid, block, args)`, so the launchers in ops.py (grid and block
arithmetic included) are the same code on the GPU and under host emulation.
"""
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DeviceError

KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"
KERNEL_FILES = tuple(sorted(p.name for p in KERNEL_DIR.glob("*.cu")))      # a new cell's .cu file included
REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)', re.S)


def kernel_signatures(source):
    """{kernel name: [(type, parameter name), ...]} read from the source's extern "C" kernels."""
    signatures = {}
    for name, params in SIGNATURE.findall(source):
        parsed = []
        for param in params.split(","):
            words = param.replace("*", " * ").split()
            parsed.append((" ".join(words[:-1]), words[-1]))
        signatures[name] = parsed
    return signatures


def read_sources():
    return {p.name: p.read_text() for p in sorted(KERNEL_DIR.glob("*.cu"))}


def header_digest(*headers):
    """A short hash of the headers the kernels #include. Compilers' caches key on the source text they
    are handed, not on what it includes: this hash, put into that text, makes a header edit recompile."""
    return hashlib.sha256("".join((KERNEL_DIR / h).read_text() for h in headers).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# On the GPU: CuPy RawModule
# ----------------------------------------------------------------------------------------------

_CUDA_CACHE = {}


def nvrtc_options(dtype):
    """What CudaKernels passes to cupy.RawModule (CuPy adds its own, -arch and -ftz=true among them)."""
    return (f"-I{KERNEL_DIR}", f"-DSCRATCHRNN_REAL={REAL[np.dtype(dtype)]}", "--std=c++14")


def rawmodule_code(source):
    """What CudaKernels hands cupy.RawModule: the .cu source and, in a last comment line, the hash of
    common.cuh. CuPy's on-disk kernel cache keys on this text and the options, not on included files, so
    without the hash an edited common.cuh would load the cubin built from the old one."""
    return f"{source}\n// common.cuh {header_digest('common.cuh')}\n"


class CudaKernels:
    """The kernels compiled by NVRTC through cupy.RawModule, once per process and dtype."""

    def __init__(self, dtype):
        import cupy
        self.cupy, self.dtype = cupy, np.dtype(dtype)
        key = self.dtype
        if key not in _CUDA_CACHE:
            functions = {}
            for filename, source in read_sources().items():
                names = list(kernel_signatures(source))
                try:
                    module = cupy.RawModule(code=rawmodule_code(source), options=nvrtc_options(self.dtype))
                    for name in names:
                        functions[name] = module.get_function(name)      # compiles on first use
                except cupy.cuda.compiler.CompileException as e:
                    message = " ".join(str(e).split())[:400]
                    raise DeviceError(f"CUDA kernel {', '.join(names)} ({filename}) failed to compile: "
                                      f"{message}") from None
            _CUDA_CACHE[key] = functions
        self.functions = _CUDA_CACHE[key]

    def launch(self, name, grid, block, args):
        self.functions[name](grid, block, args)

    def scalar(self, value):
        """A scalar kernel argument of this dtype (`real` in the sources)."""
        return self.dtype.type(value)


# ----------------------------------------------------------------------------------------------
# On the host: the same sources, g++ and ctypes
# ----------------------------------------------------------------------------------------------

# A kernel parameter's C type (`real` already replaced by float or double): its NumPy dtype and ctypes type.
C_TYPES = {"int": (np.int32, ctypes.c_int), "long long": (np.int64, ctypes.c_longlong),
           "float": (np.float32, ctypes.c_float), "double": (np.float64, ctypes.c_double)}


def host_wrapper_source(sources):
    """A C++ file that includes every kernel and adds, for each, an `extern "C" host_<name>(gx, gy, gz,
    bx, by, bz, params...)` that runs the kernel over the whole grid, thread after thread."""
    lines = ['#include "host_shim.h"']
    lines += [f'#include "{f}"' for f in sources]
    for source in sources.values():
        for name, params in kernel_signatures(source).items():
            decl = ", ".join(f"{t} {p}" for t, p in params)
            call = ", ".join(p for _, p in params)
            lines.append(
                f'extern "C" void host_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, '
                f'unsigned by, unsigned bz, {decl}) {{\n'
                f'    SCRATCHRNN_HOST_LAUNCH((dim3{{gx, gy, gz}}), (dim3{{bx, by, bz}}), {name}({call}));\n}}')
    return "\n".join(lines) + "\n"


_HOST_CACHE = {}


def build_host_library(dtype, build_dir=None):
    """Compile the kernels for the host with g++ (once per source version and dtype; the library is
    cached on disk under a hash of the sources). Returns the path of the shared library."""
    real = REAL[np.dtype(dtype)]
    sources = read_sources()
    wrapper = host_wrapper_source(sources)
    digest = hashlib.sha256((wrapper + real + header_digest("host_shim.h", "common.cuh")
                             + "".join(sources.values())).encode()).hexdigest()[:16]
    build_dir = Path(build_dir or os.environ.get("SCRATCHRNN_BUILD_DIR")
                     or Path(tempfile.gettempdir()) / "scratchrnn-host-kernels")
    build_dir.mkdir(parents=True, exist_ok=True)
    lib = build_dir / f"kernels_{real}_{digest}.so"
    if lib.exists():
        return lib
    src = build_dir / f"kernels_{real}_{digest}.cpp"
    src.write_text(wrapper)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    cmd = ["g++", "-O2", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off", f"-I{KERNEL_DIR}",
           f"-DSCRATCHRNN_REAL={real}", str(src), "-o", str(tmp)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise DeviceError("host emulation of the CUDA kernels needs g++, which is not installed") from None
    if result.returncode != 0:
        raise DeviceError(f"host build of the CUDA kernels failed: {' '.join(result.stderr.split())[:400]}")
    os.replace(tmp, lib)
    return lib


class HostKernels:
    """The CUDA kernels built for the CPU and called with NumPy arrays through ctypes."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype not in _HOST_CACHE:
            library = ctypes.CDLL(str(build_host_library(self.dtype)))
            functions = {}
            for source in read_sources().values():
                for name, params in kernel_signatures(source).items():
                    f = getattr(library, f"host_{name}")
                    types, expected = [ctypes.c_uint] * 6, []
                    for t, pname in params:             # e.g. ("const real *", "Ax") -> Ax, pointer, float32
                        element = t.replace("const ", "").rstrip(" *").replace("real", REAL[self.dtype])
                        dtype, ctype = C_TYPES[element]
                        pointer = t.endswith("*")
                        types.append(ctypes.c_void_p if pointer else ctype)
                        expected.append((pname, pointer, np.dtype(dtype)))
                    f.argtypes, f.restype = types, None
                    functions[name] = (f, expected)
            _HOST_CACHE[self.dtype] = functions
        self.functions = _HOST_CACHE[self.dtype]

    def launch(self, name, grid, block, args):
        f, expected = self.functions[name]
        if len(args) != len(expected):
            raise TypeError(f"{name} takes {len(expected)} arguments, got {len(args)}")
        # RawKernel packs each argument by its own type, unchecked: an array of the wrong dtype, or a Python
        # int where the kernel takes an int (CuPy passes 8 bytes), is garbage on the GPU. Here both are errors.
        values = []
        for (pname, pointer, dtype), a in zip(expected, args):
            if pointer:
                if not (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype == dtype):
                    raise TypeError(f"{name}: argument {pname} must be a C-contiguous {dtype} array, got "
                                    f"{getattr(a, 'dtype', type(a).__name__)}")
                values.append(a.ctypes.data)
            else:
                if not (isinstance(a, np.generic) and a.dtype == dtype):
                    raise TypeError(f"{name}: argument {pname} must be a NumPy {dtype} scalar, got "
                                    f"{getattr(a, 'dtype', type(a).__name__)}")
                values.append(a)
        g, b = tuple(grid) + (1,) * (3 - len(grid)), tuple(block) + (1,) * (3 - len(block))
        f(*g, *b, *values)

    def scalar(self, value):
        return self.dtype.type(value)
