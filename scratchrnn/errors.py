"""The errors scratchrnn raises on purpose. Command-line front ends print them as one line and exit
non-zero; anything else is a bug and keeps its traceback."""
import codecs
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


class EmptyText(DataError):
    """A corpus file, or standard input, with no text in it (nothing, or only white space): `path`, as given."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


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


def is_path_byte(character):
    """Whether a character of a path stands for one of its bytes that is not UTF-8: Python reads a file name such as
    Latin-1's b'caf\\xe9.txt' as 'caf\\udce9.txt', the byte 0xE9 as the lone surrogate U+DCE9 (PEP 383)."""
    return 0xDC80 <= ord(character) <= 0xDCFF


def quoted(path):
    """A path as a command that a line suggests writes it, to be pasted into a shell: 'runs/my book' quoted, a path
    with no space or shell character as it is. A name whose bytes are not all UTF-8 is written as `ls` writes it,
    those bytes in ANSI-C quoting: $'caf\\351.txt' (bash, zsh, ksh; POSIX since 2024), which the shell reads back to
    the same bytes (shlex.quote would write the surrogate, '\\udce9' on a terminal, naming another file)."""
    path = str(path)
    if not any(map(is_path_byte, path)):
        return shlex.quote(path)
    escaped = {"\\": "\\\\", "'": "\\'"}
    return "$'" + "".join(f"\\{ord(c) - 0xDC00:03o}" if is_path_byte(c) else escaped.get(c, c) for c in path) + "'"


def path_bytes_or_escapes(error):
    """An encoding error handler (registered as "scratchrnn.path-bytes") for what a command writes: a path's bytes
    that are not UTF-8 are written as those bytes, as Python writes them in the C locale and `ls | cat` does, and any
    other character the encoding lacks as a backslash escape (Python's stderr default)."""
    characters = error.object[error.start:error.end]
    if all(map(is_path_byte, characters)):
        return bytes(ord(c) - 0xDC00 for c in characters), error.end
    return codecs.backslashreplace_errors(error)


PATH_BYTES = "scratchrnn.path-bytes"
codecs.register_error(PATH_BYTES, path_bytes_or_escapes)
