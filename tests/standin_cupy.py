"""A stand-in CuPy for the tests: the GPU code path (our loader, launchers, engine and training loop) run
without a GPU. Its RawModule hands every kernel to the host build of the same source (gpu/modules.py's
HostKernels), so the loader and its calling convention are exercised; SyncCountingCupy's arrays log every
read on the host, so a test can count the device-to-host synchronisations of an epoch. Fixtures that
install it as `cupy` are in conftest.py."""
import sys

import numpy as np

from scratchrnn.gpu import modules
from scratchrnn.gpu.modules import HostKernels


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
        self.cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, memGetInfo=lambda: (16 * 2**30, 16 * 2**30))

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


# What the stand-in plays besides NumPy's functions (those it serves are in its `served`), as CuPy spells it.
STAND_IN_API = ("RawModule", "asarray", "get_array_module", "cuda.Device", "cuda.compiler.CompileException",
                "cuda.runtime.getDeviceCount", "cuda.runtime.getDeviceProperties", "cuda.runtime.memGetInfo",
                "cuda.nvrtc.getVersion")


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
