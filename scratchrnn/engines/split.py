"""The fast engine on two cores by batch halves ('fast-split', the CPU only): each training chunk's B sequences
split in two, the first B1 = B - B // 2 computed here and the other B2 = B // 2 by a worker process, each on one
core with one BLAS thread. Until the loss, every sequence of a chunk is independent of the others, so each half is
a chunk of its own for the fast engine (fast.py), and

    loss  = (B1 loss_1 + B2 loss_2) / B          the mean over all T*B tokens
    grads = (B1 grads_1 + B2 grads_2) / B        the same weights: the gradient is linear in the loss

while the final state and dL/d(initial state) are the two halves' rows, stacked (dL/d(initial state) times each
half's share, B1/B or B2/B; a gradient reaching the final state goes to each half over its share). The same
mathematics as the fast engine on the whole batch, up to the order of the weight gradients' sums
(tests/test_split.py holds it to the reference: float64 to 1e-10, float32 to 1e-5).

Why processes: both cores on every step. With two threads on each small per-step GEMM, MKL reached 79% of the two
cores' limit on the deep LSTM's recurrent GEMMs, and the step's kernels, softmax and update ran on one core; a
half-batch step on one core runs at the whole one's tokens/s, and two side by side at nearly that each (README
"CPU speed", round nine). Two threads of one process were tried in round six (each on half the batch): the
Python between the calls hands the GIL back and forth (0.69x).

How: the model's parameters are moved into shared memory (a file with no name, mapped), which the worker's model
views as its own: an update here is the worker's too. The worker's gradients come back through a second shared
buffer; each training chunk sends the worker its half (ids, state, dstate, masks) through a pipe and takes back
its loss and states. Validation and generation (forward) and the update run here, on the caller's BLAS threads.
The worker (`python -m scratchrnn.worker`, worker.py) starts at the first chunk it gets, and ends with this engine
(close(), or when it is collected), with this process, or when its pipe closes.
"""
import glob
import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import weakref
from multiprocessing.connection import Connection

import numpy as np

from ..backend import numpy_blas_controller
from ..errors import ConfigError, WorkerError
from . import mkl

WORKER_START_SECONDS = 300          # imports, and Numba's kernels from its cache (or compiled anew, the first time)


def signal_name(number):
    """SIGKILL for 9 (the kernel's out-of-memory killer sends it, as kill -9 does); the number where it has no name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def shared_zeros(n, dtype):
    """(a flat array of n zeros in memory that another process can map too, the file descriptor it maps): a file
    with no name (memfd_create where there is one; else one in /dev/shm or the temporary directory, unlinked at
    once), so nothing is left behind whatever happens to either process."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("scratchrnn-split")
    else:
        fd, path = tempfile.mkstemp(prefix="scratchrnn-split-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.unlink(path)
    os.ftruncate(fd, file_bytes(n, dtype))                          # zeros
    return mapped(fd, n, dtype), fd


def mapped(fd, n, dtype):
    """The flat array of n `dtype` in the file `fd`, mapped shared: what one process writes, the other reads."""
    return np.ndarray((n,), dtype, buffer=mmap.mmap(fd, file_bytes(n, dtype)))


def file_bytes(n, dtype):
    return max(1, n * np.dtype(dtype).itemsize)                    # a mapping of 0 bytes is refused


def halves(B):
    """(B1, B2): how many sequences of a chunk of B are computed here, and how many by the worker."""
    return B - B // 2, B // 2


def split_state(state, B1, scales=(1, 1)):
    """A state or a dstate (a list over layers of tuples of (B, nh) arrays; None stays None) as its two halves, each
    times its scale (contiguous copies)."""
    if state is None:
        return None, None
    first, second = scales
    return ([tuple(a[:B1] * first for a in layer) for layer in state],
            [tuple(a[B1:] * second for a in layer) for layer in state])


def stack_state(first, second, scales=(1, 1)):
    """The halves' rows stacked, each half times its scale: split_state undone."""
    return [tuple(np.concatenate([a * scales[0], b * scales[1]]) for a, b in zip(x, y)) for x, y in zip(first, second)]


class SplitEngine:
    """`inner`, a FastEngine for the model, runs what is not split (forward, the update, chunks of one sequence, and
    chunks whose gradient flow is traced: its norms are over the whole batch) and the first half of each training
    chunk; a worker process runs the second half with a FastEngine of its own."""

    def __init__(self, model, inner):
        if os.name != "posix":
            raise ConfigError("the fast-split engine needs a POSIX system (Linux, macOS); use the fast engine")
        self.model, self.inner = model, inner
        self.name = inner.name.replace("fast", "fast-split", 1) + ", batch halves on two processes"
        n = model.flat_params.size
        params, self.params_fd = shared_zeros(n, model.dtype)
        params[...] = model.flat_params
        model.move_parameters(params)
        self.worker_grads, self.grads_fd = shared_zeros(n, model.dtype)
        self.worker = [None]                                       # (process, connection) once started
        self.closer = weakref.finalize(self, close_worker, self.worker, (self.params_fd, self.grads_fd))

    def start_worker(self):
        m = self.model
        ours, theirs = socket.socketpair()
        fds = (theirs.fileno(), self.params_fd, self.grads_fd)
        # The worker imports this very copy of scratchrnn, wherever it was imported from (an installed package, a
        # checkout on sys.path).
        home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([home] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        try:
            process = subprocess.Popen([sys.executable, "-m", "scratchrnn.worker", *map(str, fds)],
                                       pass_fds=fds, stdin=subprocess.DEVNULL, env=env)
        except OSError as e:
            ours.close()
            raise WorkerError(f"the fast-split engine could not start its worker process ({e})") from None
        finally:
            theirs.close()
        self.worker[0] = (process, Connection(ours.detach()))
        self.send(dict(
            vocab_size=m.vocab_size, num_hiddens=m.num_hiddens, num_layers=m.num_layers, cell=m.cell_name,
            nonlinearity=m.nonlinearity, dtype=m.dtype.name, embedding_dim=m.embedding_dim))
        self.receive(WORKER_START_SECONDS)                          # ready, or the worker's one line

    def send(self, message):
        try:
            self.worker[0][1].send(message)
        except OSError:
            self.lost()

    def receive(self, timeout=None):
        process, connection = self.worker[0]
        try:
            if timeout is not None and not connection.poll(timeout):
                kill(process)
                self.lost(f"did not start in {timeout} s")
            kind, value = connection.recv()
        except (EOFError, OSError):
            self.lost()
        if kind == "error":
            raise WorkerError(f"the fast-split engine's worker process: {value}")
        return value

    def lost(self, why="ended"):
        """The worker is gone: one line, and the next training chunk starts another."""
        process, connection = self.worker[0]
        self.worker[0] = None
        connection.close()
        status = process.wait()
        how = f"killed by {signal_name(-status)}" if status < 0 else f"exit status {status}"
        raise WorkerError(f"the fast-split engine's worker process {why} ({how})")

    def close(self):
        """End the worker and free the shared buffers; the parameters are copied out of them first."""
        if self.closer.alive:
            self.model.move_parameters(self.model.flat_params.copy())
            self.worker_grads = None
            self.closer()

    # The engine's interface (engines/__init__.py)

    def forward(self, X, state):
        return self.inner.forward(X, state)

    def update(self, optimizer, lr, theta):
        return self.inner.update(optimizer, lr, theta)

    def threads_change_sums(self, then, now, batch_size):
        """Each half of a training chunk runs on one thread, whatever the caller's (on_one_thread): the same sums on
        any count, but for chunks of one sequence, which the inner engine runs on the caller's threads."""
        return batch_size < 2 and self.inner.threads_change_sums(then, now, batch_size)

    def loss_and_grad(self, X, Y, state, dstate=None, masks=None, state_grad=True):
        m = self.model
        T, B = X.shape
        if B < 2 or m.trace_gradient_flow or not self.closer.alive:
            return self.inner.loss_and_grad(X, Y, state, dstate, masks, state_grad)
        if self.worker[0] is None:
            self.start_worker()
        B1, B2 = halves(B)
        w1, w2 = B1 / B, B2 / B                                     # each half's share of the mean loss
        state1, state2 = split_state(state, B1)
        dstate1, dstate2 = split_state(dstate, B1, (1 / w1, 1 / w2))  # of the mean loss: of each half's, over w
        self.send((np.ascontiguousarray(X[:, B1:]), np.ascontiguousarray(Y[:, B1:]), state2, dstate2,
                   None if masks is None else np.ascontiguousarray(masks[:, :, B1:]), state_grad))
        try:
            loss1, new1, d1 = self.on_one_thread(X[:, :B1], Y[:, :B1], state1, dstate1,
                                                 None if masks is None else masks[:, :, :B1], state_grad)
        except BaseException:                        # Ctrl-C, say: the worker's answer would be taken for the next
            end_worker(self.worker)                  # chunk's, so it goes, and the next chunk starts another
            raise
        loss2, new2, d2 = self.receive()
        grads = m.flat_grads                                        # w1 grads_1 + w2 grads_2
        if B1 == B2:
            grads += self.worker_grads
            grads *= 0.5
        else:                                                       # the worker's buffer scaled in place (the worker
            self.worker_grads *= w2                                 # writes all of it at each chunk): no temporary
            grads *= w1
            grads += self.worker_grads
        loss = np.asarray(w1 * float(loss1) + w2 * float(loss2), dtype=m.dtype)
        return loss, stack_state(new1, new2), stack_state(d1, d2, (w1, w2)) if state_grad else None

    def on_one_thread(self, *chunk):
        """The inner engine's loss_and_grad on one BLAS thread (the worker has the other core), then the caller's
        threads again."""
        controller = numpy_blas_controller()
        threads = 1 if controller is None else controller.get_num_threads()
        if threads == 1:
            return self.inner.loss_and_grad(*chunk)
        controller.set_num_threads(1)
        try:
            return self.inner.loss_and_grad(*chunk)
        finally:
            controller.set_num_threads(threads)
            if self.inner.mkl:
                mkl.sync_threads(threads)


def close_worker(worker, fds):
    """End the worker; close the shared buffers' files (their memory goes with the last mapping of it)."""
    end_worker(worker)
    for fd in fds:
        os.close(fd)


def end_worker(worker):
    """Tell the worker to end (its pipe closing does too) and wait for it."""
    if worker[0] is not None:
        process, connection = worker[0]
        worker[0] = None
        try:
            connection.send(None)
        except OSError:
            pass
        connection.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill(process)


def kill(process):
    """Kill the worker and wait for it; then remove the 1 KiB file that MKL's OpenMP runtime (libiomp5) registers
    itself in for each process and removes at a normal exit: a killed one leaves it in /dev/shm."""
    process.kill()
    process.wait()
    for path in glob.glob(f"/dev/shm/__KMP_REGISTERED_LIB_{process.pid}_*"):
        try:
            os.unlink(path)
        except OSError:
            pass
