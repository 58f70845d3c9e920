"""The fast engine's CPU GEMM from Intel's MKL, where it is installed: `pip install 'scratchrnn[mkl]'` (PyPI's `mkl`
package, about 1 GB installed; never required).

Why: on an Intel Xeon (Sapphire Rapids class, AVX-512; 2026-12-02, README "CPU speed", round eight) NumPy's OpenBLAS
runs the recurrent GEMM of a step, (32, 256) x (256, 1024), at 61-66 GFLOP/s on one core and MKL at 94-104, PyTorch's
own BLAS: 1.5-1.8x at the shapes of the LSTM, the GRU and the tanh RNN, 1.1-1.15x at the chunk's hoisted GEMMs.

Which BLAS the engine uses is the environment variable SCRATCHRNN_BLAS:

    auto    (or unset) MKL where it is installed and the CPU is Intel's, where it was measured; else NumPy's
    mkl     MKL on any CPU (one clear line if it is not installed)
    numpy   NumPy's matmul (its bundled OpenBLAS) always

MKL is called through its CBLAS interface (cblas_sgemm, cblas_dgemm) from a Numba function, about 1.6 us a call
(ctypes alone costs 9 us: 14 arguments converted in Python). C = A B with row-major C; an operand that is a
transposed view of a row-major array is passed as such (CblasTrans), so no copy is made. MKL runs as many threads as
NumPy's BLAS does (sync_threads, at each training chunk): one setting, threadpool_limits or OPENBLAS_NUM_THREADS, for
both; never fewer (MKL_Set_Dynamic(0)), so a step's sums, and an exact resume, do not depend on MKL's load balancing.
"""
import ctypes
import functools
import os
import site
import sys
from types import SimpleNamespace

import llvmlite.binding
import numpy as np
from numba import njit, types

from ..errors import ConfigError
from .numba_cache import choose_cache_folder

CHOICES = ("auto", "mkl", "numpy")
VARIABLE = "SCRATCHRNN_BLAS"
INSTALL = "pip install 'scratchrnn[mkl]'"
LIBRARY_NAMES = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so")

# CBLAS's enums, and MKL's for its packed GEMM (cblas_?gemm_pack, cblas_?gemm_compute)
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
PACKED, B_MATRIX = 151, 162
PACK_ALIGNMENT = 64                     # bytes: a packed operand's start, as MKL advises


def library_paths():
    """Where PyPI's `mkl` puts libmkl_rt (the environment's lib/, or the user's), then the loader's own search."""
    folders = [os.path.join(sys.prefix, "lib"), os.path.join(site.USER_BASE or "", "lib")]
    return [os.path.join(folder, name) for folder in folders for name in LIBRARY_NAMES] + list(LIBRARY_NAMES)


@functools.lru_cache(maxsize=None)
def load():
    """(MKL's runtime library as a ctypes.CDLL, None) where it loads, else (None, why not)."""
    reasons = []
    for path in library_paths():
        if os.path.isabs(path) and not os.path.exists(path):
            continue
        try:
            return ctypes.CDLL(path), None
        except OSError as e:
            reasons.append(str(e).strip().splitlines()[0] if str(e).strip() else path)
    return None, reasons[0] if reasons else "libmkl_rt not found"


def loaded():
    """load()'s library; one clear line where MKL is missing."""
    library, why_not = load()
    if library is None:
        raise ConfigError(f"MKL cannot be loaded ({why_not}); {INSTALL}")
    return library


def intel_cpu():
    """True on a CPU whose vendor is Intel (/proc/cpuinfo's vendor_id)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip() == "GenuineIntel"
    except OSError:
        pass
    return False


def setting():
    """SCRATCHRNN_BLAS as the rule reads it: auto where it is unset or empty."""
    return os.environ.get(VARIABLE, "auto").strip().lower() or "auto"


def chosen():
    """True when the fast engine's CPU GEMMs go through MKL: SCRATCHRNN_BLAS's rule (module docstring)."""
    choice = setting()
    if choice not in CHOICES:
        raise ConfigError(f"{VARIABLE}={os.environ[VARIABLE]!r} is not one of {', '.join(CHOICES)}")
    if choice == "numpy" or (choice == "auto" and not intel_cpu()):
        return False
    library, why_not = load()
    if choice == "mkl" and library is None:
        raise ConfigError(f"{VARIABLE}=mkl, but MKL cannot be loaded ({why_not}); {INSTALL}")
    return library is not None and (choice == "mkl" or intel_cpu())


# CBLAS's GEMMs as Numba sees them, bound by name when compiled code is loaded (the library loaded first, load_library
# below): a pointer is passed as an integer, which both x86-64's and AArch64's calling conventions put in the same
# register. Bound by name rather than by a ctypes pointer, so the compiled function can be cached like the kernels.
def _external_gemm(name, scalar):
    i, pointer = types.intc, types.intp
    return types.ExternalFunction(name, types.void(i, i, i, i, i, i, scalar, pointer, i, pointer, i, scalar, pointer, i))


def _external_pack(name, scalar):
    i, pointer = types.intc, types.intp
    return types.ExternalFunction(name, types.void(i, i, i, i, i, i, scalar, pointer, i, pointer))


def _external_compute(name, scalar):
    i, pointer = types.intc, types.intp
    return types.ExternalFunction(name, types.void(i, i, i, i, i, i, pointer, i, pointer, i, scalar, pointer, i))


def _gemm(A, B, C):
    """C = A B by CBLAS (C must not overlap A or B); False (nothing done) where the shapes do not match or an operand's
    layout is not one CBLAS takes (_operand_layout), or C is not row-major."""
    M, K = A.shape
    N = B.shape[1]
    if B.shape[0] != K or C.shape[0] != M or C.shape[1] != N:
        return False
    transA, lda = operand_layout(A)
    transB, ldb = operand_layout(B)
    transC, ldc = operand_layout(C)
    if transA == 0 or transB == 0 or transC != NO_TRANS:
        return False
    if C.itemsize == 4:
        SGEMM(ROW_MAJOR, transA, transB, M, N, K, 1.0, A.ctypes.data, lda, B.ctypes.data, ldb, 0.0, C.ctypes.data, ldc)
    else:
        DGEMM(ROW_MAJOR, transA, transB, M, N, K, 1.0, A.ctypes.data, lda, B.ctypes.data, ldb, 0.0, C.ctypes.data, ldc)
    return True


def _pack(M, B, packed):
    """MKL's packed form of B (K, N) for products A B with A of M rows, into `packed` (bytes, PackedB's buffer);
    False where B's layout is not one CBLAS takes."""
    K, N = B.shape
    trans, ld = operand_layout(B)
    if trans == 0:
        return False
    if B.itemsize == 4:
        SGEMM_PACK(ROW_MAJOR, B_MATRIX, trans, M, N, K, 1.0, B.ctypes.data, ld, packed.ctypes.data)
    else:
        DGEMM_PACK(ROW_MAJOR, B_MATRIX, trans, M, N, K, 1.0, B.ctypes.data, ld, packed.ctypes.data)
    return True


def _gemm_packed(A, packed, C):
    """C = A B with B packed (_pack, for A's rows and C's columns); False where A's or C's layout is not one CBLAS
    takes."""
    M, K = A.shape
    N = C.shape[1]
    transA, lda = operand_layout(A)
    transC, ldc = operand_layout(C)
    if transA == 0 or transC != NO_TRANS:
        return False
    if C.itemsize == 4:
        SGEMM_COMPUTE(ROW_MAJOR, transA, PACKED, M, N, K, A.ctypes.data, lda, packed.ctypes.data, N, 0.0,
                      C.ctypes.data, ldc)
    else:
        DGEMM_COMPUTE(ROW_MAJOR, transA, PACKED, M, N, K, A.ctypes.data, lda, packed.ctypes.data, N, 0.0,
                      C.ctypes.data, ldc)
    return True


@functools.lru_cache(maxsize=None)
def load_library():
    """Load MKL for compiled code (llvmlite) and compile _gemm, _pack and _gemm_packed for float32 and float64 (or
    load them from Numba's cache): a namespace of the three; one clear line where MKL is missing."""
    library = loaded()
    llvmlite.binding.load_library_permanently(library._name)
    library.MKL_Set_Dynamic(0)                  # exactly the threads it is given: a GEMM's sums, bit for bit, with them
    choose_cache_folder(__file__)               # (numba_kernels did, where it was imported first)
    compiled = functools.partial(njit, cache=True, nogil=True)
    floats = ("float32", "float64")
    return SimpleNamespace(
        gemm=compiled([f"boolean({t}[:, :], {t}[:, :], {t}[:, :])" for t in floats])(_gemm),
        pack=compiled([f"boolean(intc, {t}[:, :], uint8[:])" for t in floats])(_pack),
        gemm_packed=compiled([f"boolean({t}[:, :], uint8[:], {t}[:, :])" for t in floats])(_gemm_packed))


def _operand_layout(X):
    """(CBLAS's transpose flag, leading dimension) of a 2-D operand read as row-major: NO_TRANS where its rows are
    unit-strided and do not overlap, TRANS where it is a transposed view of such an array; 0 where neither (negative
    or zero strides, a strided slice). An axis of length 1 may have any stride: it is never stepped along."""
    rows, columns = X.shape
    size = X.itemsize
    row_stride = columns * size if rows <= 1 else X.strides[0]
    column_stride = size if columns <= 1 else X.strides[1]
    if column_stride == size and row_stride >= columns * size and row_stride % size == 0:
        return NO_TRANS, max(row_stride // size, 1)
    row_stride = size if rows <= 1 else X.strides[0]
    column_stride = rows * size if columns <= 1 else X.strides[1]
    if row_stride == size and column_stride >= rows * size and column_stride % size == 0:
        return TRANS, max(column_stride // size, 1)
    return 0, 0


operand_layout = njit(inline="always")(_operand_layout)
SGEMM, DGEMM = _external_gemm("cblas_sgemm", types.float32), _external_gemm("cblas_dgemm", types.float64)
SGEMM_PACK, DGEMM_PACK = (_external_pack("cblas_sgemm_pack", types.float32),
                          _external_pack("cblas_dgemm_pack", types.float64))
SGEMM_COMPUTE, DGEMM_COMPUTE = (_external_compute("cblas_sgemm_compute", types.float32),
                                _external_compute("cblas_dgemm_compute", types.float64))


def packed_bytes(M, K, N, dtype):
    """The bytes a PackedB(M, K, N, dtype) allocates: MKL's size of the packed form (cblas_?gemm_pack_get_size, about
    8 MiB more than B for the recurrent GEMMs' shapes) and PACK_ALIGNMENT for its alignment. Nothing is compiled."""
    library = loaded()
    get_size = library.cblas_sgemm_pack_get_size if np.dtype(dtype).itemsize == 4 else library.cblas_dgemm_pack_get_size
    get_size.restype = ctypes.c_size_t
    return get_size(B_MATRIX, M, N, K) + PACK_ALIGNMENT


class PackedB:
    """A right-hand operand B (K, N) in MKL's packed form for products A B with A of M rows (cblas_?gemm_pack):
    packed once, it spares each product the packing of B that cblas_?gemm does at every call, which at M = 32 rows
    (a recurrent GEMM of a step) is a large part of the work. pack(B) packs again into the same buffer (B's values
    changed: the weights after an update); matmul(A, packed, out) computes with it."""

    def __init__(self, M, K, N, dtype):
        self.M, self.K, self.N, self.dtype = M, K, N, np.dtype(dtype)
        self.shape = (K, N)                                     # B's, as for an array
        self.storage = np.empty(packed_bytes(M, K, N, dtype), np.uint8)
        size = self.storage.size - PACK_ALIGNMENT
        start = -self.storage.ctypes.data % PACK_ALIGNMENT
        self.buffer = self.storage[start:start + size]

    def pack(self, B):
        if B.shape != (self.K, self.N) or B.dtype != self.dtype or not load_library().pack(self.M, B, self.buffer):
            raise ValueError(f"cannot pack a {B.dtype} {B.shape} array with strides {B.strides} as "
                             f"a {self.dtype} ({self.K}, {self.N}) operand")
        return self


def matmul(A, B, out):
    """out = A B through MKL (np.matmul's contract for 2-D float32 or float64 arrays of one dtype; out must not overlap
    A or B); np.matmul where MKL cannot take the operands as they are, or they do not match (its error). B may be a
    PackedB (then a ValueError where A and out do not fit it)."""
    if isinstance(B, PackedB):
        if A.shape != (B.M, B.K) or out.shape != (B.M, B.N) or not A.dtype == out.dtype == B.dtype or \
                not load_library().gemm_packed(A, B.buffer, out):
            raise ValueError(f"{A.dtype} {A.shape} times a {B.dtype} ({B.K}, {B.N}) operand packed for {B.M} rows, "
                             f"into {out.dtype} {out.shape}, strides {A.strides} and {out.strides}: no such product")
        return out
    supported = A.dtype == B.dtype == out.dtype and out.dtype in (np.float32, np.float64) and out.ndim == 2
    try:
        done = supported and A.ndim == B.ndim == 2 and load_library().gemm(A, B, out)
    except TypeError:                                    # an argument Numba's signature does not take (read-only)
        done = False
    if not done:
        np.matmul(A, B, out=out)
    return out


def describe():
    """MKL in words ("MKL 2026.2 (/path/libmkl_rt.so.3)"), or why it is not loaded."""
    library, why_not = load()
    if library is None:
        return f"MKL not loaded ({why_not})"
    text = ctypes.create_string_buffer(256)
    library.MKL_Get_Version_String(text, len(text))
    words = text.value.decode(errors="replace").split()
    version = next((w.split("-")[0] for w, before in zip(words[1:], words) if before == "Version"), "")
    return f"MKL {version} ({library._name})".replace("MKL  (", "MKL (")


def threads():
    """The threads MKL runs a GEMM on now."""
    return load()[0].MKL_Get_Max_Threads()


def sync_threads(n):
    """MKL to run on n threads (NumPy's BLAS's count: backend.numpy_blas_threads) in the calling thread, the one that
    calls the GEMMs. MKL_Set_Num_Threads_Local, the setting threadpool_limits changes: where one is set, it outranks
    MKL_Set_Num_Threads (which round eight called: after a threadpool_limits(1) block, MKL went on running 2 threads
    where it was told 1, and fast-split's half here ran 3 threads on 2 cores at 0.6x, README round nine)."""
    if threads() != n:
        load()[0].MKL_Set_Num_Threads_Local(n)
