"""The `scratchrnn` command, and `python -m scratchrnn`."""
import sys

from .errors import EXIT_INTERRUPTED                 # (errors imports nothing heavy)


def main():
    """cli.main, after its imports (NumPy, Numba, the kernels: about half a second): a Ctrl-C while they load was a
    traceback from inside them; it is the one line a Ctrl-C is later."""
    try:
        from .cli import main as command
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    command()


if __name__ == "__main__":
    main()
