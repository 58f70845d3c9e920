"""The errors scratchrnn raises on purpose. Command-line front ends print them as one line and exit
non-zero; anything else is a bug and keeps its traceback."""
import shlex

# The commands' exit statuses (cmdline.with_one_line_errors; __main__ before anything else is loaded)
EXIT_ERROR = 2              # a user's error: one line on stderr
EXIT_DIVERGED = 3           # the loss became NaN or infinite; the last good checkpoint is kept
EXIT_INTERRUPTED = 130      # Ctrl-C: saved where there was something to save
EXIT_PIPE_CLOSED = 141      # what reads our output has stopped (128 + SIGPIPE, as for a Unix tool that SIGPIPE ends)


class ScratchRNNError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DeviceError(ScratchRNNError):
    """The requested device cannot be used (no CuPy, no GPU, a kernel that does not compile)."""


class DataError(ScratchRNNError):
    """A corpus that cannot be read or is too small to train on."""


class ConfigError(ScratchRNNError):
    """A hyperparameter that makes no sense."""


class CheckpointError(ScratchRNNError):
    """A checkpoint or weight file that is missing, corrupted or does not match the model, or a file of the run
    that cannot be written."""


class OutputLost(ScratchRNNError):
    """Standard output cannot be written: the file it goes to is on a full disk (ENOSPC), or its device fails (EIO).
    A closed pipe is not this: it stays a BrokenPipeError, the quiet end of a reader that has what it wanted."""

    def __init__(self, why):
        super().__init__(f"cannot write to standard output ({why})")
        self.why = why


class TrainingDiverged(ScratchRNNError):
    """The loss became NaN or infinite."""


class WorkerError(ScratchRNNError):
    """The fast-split engine's worker process could not start, or ended, or failed on its half of a chunk."""


def quoted(path):
    """A path as a command that a line suggests writes it, to be pasted into a shell: 'runs/my book' quoted, a path
    with no space or shell character as it is."""
    return shlex.quote(str(path))
