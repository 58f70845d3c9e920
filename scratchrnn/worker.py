"""The fast-split engine's worker process (engines/split.py starts it: python -m scratchrnn.worker FD PARAMS GRADS):
a model whose parameters are the shared ones of the process that trains, on one BLAS thread. It sits here, beside
the model it builds, not in engines/: an engine never imports the model."""
import signal
import sys
from multiprocessing.connection import Connection

from threadpoolctl import threadpool_limits

from .engines.split import mapped
from .model import RNNLM


def serve(fd, params_fd, grads_fd):
    """The worker: a model that views the shared parameters, on one BLAS thread; for each message the second half
    of a chunk, its gradients into the shared buffer; ends when the pipe says None or closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)                    # Ctrl-C is for the process that trains
    connection = Connection(fd)
    try:
        config = connection.recv()
        threadpool_limits(1)
        model = RNNLM(**config, engine="fast")
        n, dtype = model.flat_params.size, model.dtype
        model.move_parameters(mapped(params_fd, n, dtype))
        model.move_gradients(mapped(grads_fd, n, dtype))             # its gradients straight into the shared buffer
        connection.send(("ready", None))
    except Exception as e:                                         # one line back to the process that trains
        try:
            connection.send(("error", f"{type(e).__name__}: {e}"))
        except OSError:
            pass
        return
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            loss, new_state, dstate0 = model.engine.loss_and_grad(*message)
            reply = ("done", (float(loss), new_state, dstate0))
        except Exception as e:
            reply = ("error", f"{type(e).__name__}: {e}")
        try:
            connection.send(reply)
        except OSError:                                            # the process that trains has gone, or let go
            return


if __name__ == "__main__":
    serve(*map(int, sys.argv[1:4]))
