"""How the programs start: the `scratchrnn` command (__main__), the book's examples and the exercises load NumPy, Numba
and the kernels (about half a second) under a guard, so that a Ctrl-C while they load is the one line a Ctrl-C is later
("interrupted", exit status 130), not a traceback from inside their imports. This module imports nothing heavy."""
import contextlib
import sys
import time

from .errors import EXIT_INTERRUPTED


def interrupted():
    print("interrupted", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def loading():
    """Around a program's imports: a Ctrl-C while they load is one line and exit status 130.

        with loading():
            from scratchrnn.experiments import parser, run_exercise
    """
    try:
        yield
    except KeyboardInterrupt:
        interrupted()


def main():
    """The `scratchrnn` command: cli.main, once loaded (told when the process began: train's --max-minutes counts
    the loading too)."""
    started = time.perf_counter()
    with loading():
        from .cli import main as command
    command(started=started)


def book_example(description, recipe):
    """The book's examples (examples/train_deep_lstm.py, examples/train_rnn_scratch.py): book.main, once loaded."""
    with loading():
        from .book import main as run
    run(description, recipe)
