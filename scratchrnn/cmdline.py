"""The command-line toolkit every entry point shares: `scratchrnn`, the book's examples and exercises, the
self-test, `diagnose` and the benchmarks.

    OneLineParser            argparse whose usage errors are one line and exit status 2; another tool's flag
                             (OTHER_TOOLS_FLAGS: char-rnn's -rnn_size) is told ours
    DefaultsHelpFormatter    --help shows every option's default, and no "(default: None)"
    positive_int, positive_float, seed_int   argument types that refuse what makes no sense, in one line
    user_path, CorpusPaths   paths as a shell would have made them: a leading ~, a --corpus pattern left in quotes
    add_model_arguments, add_training_arguments, add_selftest_arguments    the shared flags; choices and defaults
                             come from where they are declared (cells.CELLS, model.MODEL_DEFAULTS, ...)
    with_one_line_errors     our errors -> one line on stderr and EXIT_ERROR; Ctrl-C -> EXIT_INTERRUPTED; a reader
                             that stops reading (`| head`) -> a quiet EXIT_PIPE_CLOSED; an output that cannot be
                             written (`> out.txt` on a full disk; StandardOutput) -> one line and EXIT_ERROR
    blas_threads             limit the BLAS thread pool
    usable_cpus, note_engine_on_cpu   the CPUs this process may run on; notes where the engine could run faster
                             (fast-split on one CPU; an Intel CPU without MKL)
    prepare_out_dir, prepare_out_file   prove an output folder or file can be written, before any training
    hold_out_dir             one training at a time writes into a run folder
    terminal_fds, leave_hung_up_terminal   a training outlives its terminal's hang-up long enough to save
    command_line_flags       the flags that give a parser some values, as a user types them
    pyplot                   matplotlib's pyplot, drawing into files, imported when first asked for
"""
import argparse
import copy
import glob
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .backend import DEVICES
from .cells import CELLS
from .engines import ENGINES, mkl
from .errors import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, PATH_BYTES, ConfigError, OutputLost,
                     ScratchRNNError, quoted)
from .model import DTYPES, INITS, MODEL_DEFAULTS, NONLINEARITIES
from .optimizers import HYPERPARAMETERS, OPTIMIZERS, default_lr
from .schedules import SCHEDULE_DEFAULTS, SCHEDULES, check_schedule_takes
from .train import TRAIN_DEFAULTS


def pyplot():
    """matplotlib.pyplot, drawing into files (its Agg backend: no display wanted), imported at the first call: half a
    second that a command which draws nothing does not wait for."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def user_path(text):
    """An argparse type for a path: a leading ~ is the user's home, as the shell makes it where it is not quoted
    ("~/my runs" in quotes was a folder named ~ made in the current one, which a later `rm -rf ~` would take for the
    home)."""
    return os.path.expanduser(text)


class CorpusPaths(argparse._ExtendAction):
    """--corpus: the paths of every --corpus flag, in turn, with a pattern that the shell left as it was (in quotes;
    Windows' shells expand none) expanded as a POSIX shell does, in sorted order: `--corpus "texts/*.txt"` said
    "corpus 'texts/*.txt' does not exist". A pattern that matches no file is one line; a file whose name looks like a
    pattern is read as named."""

    def __call__(self, parser, namespace, values, option_string=None):
        paths = []
        for value in values:
            pattern = value != "-" and not os.path.exists(value) and glob.has_magic(value)
            matches = sorted(glob.glob(value)) if pattern else [value]
            if not matches:
                parser.error(f"{option_string} {value}: no file matches it")
            paths += matches
        super().__call__(parser, namespace, paths, option_string)


def int_at_least(low, what):
    """An argparse type: an integer >= low, else one line saying `what` was expected."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


positive_int = int_at_least(1, "a positive integer")
every_or_off = int_at_least(0, "a non-negative integer (0: off)")
seed_int = int_at_least(0, "a non-negative integer")     # NumPy's generators take any integer >= 0 (a negative
                                                         # seed was a ValueError traceback)


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def command_line_flags(values, parser):
    """The flags of `parser` that give it `values` ({dest: value}), those that are not its defaults, as a user would
    type them: '--save-every-steps 500 --plot'."""
    flags = []
    for action in parser._actions:
        value = values.get(action.dest, action.default)
        if value == action.default or not (value or action.default):          # 0 (off) is as good as None
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            flags.append(action.option_strings[0 if value else 1])
        else:
            flags.append(f"{action.option_strings[0]} {value}")
    return " ".join(flags)


# The flags of the tools a person comes from, and ours for the same thing: char-rnn (train.lua, sample.lua),
# torch-rnn (train.lua, sample.lua), PyTorch's word_language_model example (main.py) and the book's names. Their
# spelling with _ or with one dash (-rnn_size, --batch_size, -length) is read as one with - and two.
OTHER_TOOLS_FLAGS = {
    "rnn-size": "--hidden", "nhid": "--hidden", "num-hiddens": "--hidden", "hidden-size": "--hidden",
    "num-layers": "--layers", "nlayers": "--layers",
    "model": "--cell", "model-type": "--cell", "rnn-type": "--cell",
    "seq-length": "--num-steps", "seq-len": "--num-steps", "bptt": "--num-steps",
    "learning-rate": "--lr", "learning-rate-decay": "--lr-decay", "lr-decay-factor": "--lr-decay",
    "learning-rate-decay-after": "--decay-after", "lr-decay-every": "--step-size", "decay-rate": "--alpha",
    "grad-clip": "--theta", "clip": "--theta", "max-norm": "--theta",
    "max-epochs": "--epochs", "num-epochs": "--epochs",
    "data-dir": "--corpus", "data": "--corpus", "input": "--corpus", "input-h5": "--corpus",
    "val-frac": "--val-fraction",
    "checkpoint-dir": "--out", "savefile": "--out", "checkpoint-name": "--out",
    "wordvec-size": "--embedding", "emsize": "--embedding", "embedding-size": "--embedding",
    "print-every": "--log-every-steps", "log-interval": "--log-every-steps",
    "eval-val-every": "--validate-every-steps", "checkpoint-every": "--save-every-steps",
    "gpu": "--device gpu", "gpuid": "--device gpu", "cuda": "--device gpu",
    "checkpoint": "--from", "primetext": "--prefix", "start-text": "--prefix", "sample": "--temperature",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), not the whole usage block."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        """argparse's, but `train book.txt` (a text given without --corpus, to a program that takes one) is told
        the flag it needs, and so is a flag of another tool (`-rnn_size 512`, char-rnn's: --hidden), not only
        "unrecognized arguments"."""
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            text = next((a for a in extras if not a.startswith("-") and Path(a).is_file()), None)
            hints = [f"a text to train on is given as --corpus {quoted(text)}"] if text and hasattr(args, "corpus") \
                else []
            flags = self.flags(args)
            ours = [f"{extra.split('=')[0]} is {our_flag(extra, flags)}" for extra in extras if our_flag(extra, flags)]
            hints += [f"here {', '.join(ours)}"] if ours else []
            self.error(f"unrecognized arguments: {' '.join(extras)}{''.join('; ' + hint for hint in hints)}")
        return args

    def flags(self, args):
        """The flags this parser takes, and those of the command that args chose (`scratchrnn train`'s)."""
        flags = set(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
                flags |= action.choices[getattr(args, action.dest)].flags(args)
        return flags


def our_flag(extra, flags):
    """Of flags, the one for another tool's flag (OTHER_TOOLS_FLAGS) or for one of ours spelt another way (-length,
    --batch_size), or None."""
    if not extra.startswith("-") or extra == "-":
        return None
    name = extra.lstrip("-").split("=")[0].replace("_", "-").lower()
    ours = OTHER_TOOLS_FLAGS.get(name, f"--{name}")
    return ours if ours.split()[0] in flags and ours != extra.split("=")[0] else None


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help with every option's default, the description as written: an option with no help text still shows its
    default, and none shows "(default: None)" or "(default: False)" (an option that is not given does nothing, or
    what its help says) or a second default where its help already names one."""

    def _format_action(self, action):
        if action.help is None and self.shows_default(action):     # argparse prints nothing for help=None
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help or ""
        if not self.shows_default(action) or "default" in text:
            return text
        return f"{text} (default: %(default)s)"

    @staticmethod
    def shows_default(action):
        return bool(action.option_strings) and not any(action.default is nothing
                                                       for nothing in (None, False, argparse.SUPPRESS))


def add_model_arguments(p, defaults=None):
    """The flags that choose a model: --cell --nonlinearity --layers --hidden (defaults: MODEL_DEFAULTS,
    overridden by `defaults`)."""
    d = {**MODEL_DEFAULTS, **(defaults or {})}
    p.add_argument("--cell", choices=tuple(CELLS), default=d["cell"], help="the recurrent cell of every layer")
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, default=d["nonlinearity"], help="for --cell rnn")
    p.add_argument("--layers", type=positive_int, default=d["layers"], help="recurrent layers, stacked")
    p.add_argument("--hidden", type=positive_int, default=d["hidden"], help="hidden units of each layer")
    return p


def add_selftest_arguments(p):
    """The self-test's flag, for `scratchrnn selftest` and `python -m scratchrnn.selftest`."""
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="gpu, cpu (the CUDA kernels built for the host) or auto (the GPU when CuPy finds one)")
    return p


def add_training_arguments(p, defaults=None):
    """The flags shared by the book's examples and `scratchrnn train` (defaults: MODEL_DEFAULTS and
    TRAIN_DEFAULTS, overridden by `defaults`)."""
    d = {**MODEL_DEFAULTS, **TRAIN_DEFAULTS, **(defaults or {})}
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to train; auto picks the GPU when CuPy finds one")
    add_model_arguments(p, d)
    p.add_argument("--epochs", type=positive_int, default=d["epochs"],
                   help="passes over the training text" + ("" if d["epochs"] else
                        f" (default: {TRAIN_DEFAULTS['epochs']}; with --resume, the run's own total)"))
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate; none given, the --optimizer's own: {d['lr']:g} with sgd, 0.2 with momentum, "
                        "3e-3 with adam and adamw, 2e-3 with rmsprop (optimizers/)")
    p.set_defaults(sgd_lr=d["lr"])                          # the rate of SGD when --lr is not given
    p.add_argument("--theta", type=positive_float, default=d["theta"], help="gradient clipping threshold")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"], help="sequences in a minibatch")
    p.add_argument("--num-steps", type=positive_int, default=d["num_steps"],
                   help="time steps in a minibatch: how far back truncated BPTT reaches")
    p.add_argument("--random-iter", action="store_true",
                   help="random sampling (state re-initialised each minibatch) instead of sequential")
    p.add_argument("--corpus", action=CorpusPaths, nargs="+", type=user_path, default=None, metavar="PATH",
                   help="UTF-8 text file(s) to train on, read in turn as one text: --corpus a.txt b.txt, "
                        "--corpus texts/*.txt or --corpus a.txt --corpus b.txt; - reads standard input (cat *.txt | "
                        "scratchrnn train --corpus -) (default: the Time Machine, shipped)")
    how_much = p.add_mutually_exclusive_group()          # both given: which one meant? (--full-text won silently)
    how_much.add_argument("--max-tokens", type=int, default=d.get("max_tokens", 10000),
                          help="keep the first N tokens (the book: 10000): the text is read through for its "
                               "vocabulary, and only those N held, so a text larger than the memory trains on its "
                               "start; -1 keeps the whole text")
    how_much.add_argument("--full-text", action="store_true", help="same as --max-tokens -1")
    p.add_argument("--seed", type=seed_int, default=d["seed"],
                   help="seeds the initial weights, the minibatches' order and the dropout masks")
    p.add_argument("--init", choices=INITS, default=d["init"],
                   help="pytorch: U(-1/sqrt(nh), 1/sqrt(nh)); normal: the book's N(0, 0.01^2) weights, zero biases")
    p.add_argument("--engine", choices=ENGINES, default=d["engine"],
                   help="fast (Numba kernels on the CPU, our CUDA kernels on a GPU), fast-split (fast on two CPU "
                        "cores, each on half of every minibatch) or the readable NumPy reference")
    p.add_argument("--dtype", choices=DTYPES, default=d["dtype"], help="float64 for checks; float32 is faster")
    p.add_argument("--embedding", type=positive_int, default=d["embedding"], metavar="D",
                   help="a learnable embedding of size D instead of one-hot input")
    p.add_argument("--dropout", type=float, default=d["dropout"], metavar="P",
                   help="drop each unit of every layer's output (what the next layer and the output layer read) "
                        "with probability P while training, as char-rnn does; 0: none (the book's)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="BLAS threads on the CPU (default: all cores; more than the CPUs there are is capped, with a "
                        "note); use 1 when running several trainings at once")
    add_optimizer_arguments(p, d)
    return p


def add_optimizer_arguments(p, d):
    """--optimizer and its hyperparameters (each None unless given: the rule's own default, PyTorch's), and
    the learning-rate schedule (schedules.py)."""
    g = p.add_argument_group("optimiser (after global-norm clipping) and learning-rate schedule")
    g.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=d.get("optimizer", "sgd"),
                   help="sgd (the book's), momentum, adam, adamw (decoupled weight decay), rmsprop (char-rnn's)")
    g.add_argument("--momentum", type=float, default=None, help="momentum: 0.9; rmsprop: 0")
    g.add_argument("--nesterov", action="store_const", const=True, default=None, help="Nesterov momentum")
    g.add_argument("--beta1", type=float, default=None, help="adam, adamw: 0.9")
    g.add_argument("--beta2", type=float, default=None, help="adam, adamw: 0.999")
    g.add_argument("--eps", type=float, default=None, help="adam, adamw, rmsprop: 1e-8")
    g.add_argument("--alpha", type=float, default=None, help="rmsprop's smoothing: 0.99")
    g.add_argument("--weight-decay", type=float, default=None, help="L2 (adamw: decoupled, 0.01); others: 0")
    g.add_argument("--schedule", choices=SCHEDULES, default=d.get("schedule", SCHEDULE_DEFAULTS["schedule"]),
                   help="char-rnn: lr x --lr-decay every epoch from --decay-after on; step: lr x --gamma every "
                        "--step-size epochs; cosine: linear warm-up over --warmup epochs, then a cosine to 0")
    g.add_argument("--lr-decay", type=float, default=SCHEDULE_DEFAULTS["lr_decay"], help="char-rnn's factor")
    g.add_argument("--decay-after", type=int, default=SCHEDULE_DEFAULTS["decay_after"],
                   help="char-rnn's epochs at the full rate")
    g.add_argument("--step-size", type=positive_int, default=SCHEDULE_DEFAULTS["step_size"], help="step's epochs")
    g.add_argument("--gamma", type=float, default=SCHEDULE_DEFAULTS["gamma"], help="step's factor")
    g.add_argument("--warmup", type=float, default=SCHEDULE_DEFAULTS["warmup"], metavar="EPOCHS",
                   help="cosine's warm-up")


def optimizer_config(args):
    """The optimiser's and the schedule's part of a new run's config, read off the flags (a schedule's parameter that
    another schedule takes refused)."""
    config = {"optimizer": args.optimizer, **{k: getattr(args, k) for k in HYPERPARAMETERS},
              **{k: getattr(args, k) for k in SCHEDULE_DEFAULTS}}
    check_schedule_takes(config)
    return config


def learning_rate_of(args):
    """--lr, or when it is not given the rate of the optimiser chosen (optimizers.default_lr)."""
    return args.lr if args.lr is not None else default_lr(args.optimizer, args.sgd_lr)


def max_tokens_of(args):
    """--max-tokens N (or -1, or train's --full-text: the whole text), checked."""
    max_tokens = -1 if getattr(args, "full_text", False) else args.max_tokens
    if max_tokens == 0 or max_tokens < -1:
        raise ConfigError(f"--max-tokens must be positive or -1 (got {max_tokens})")
    return max_tokens


def model_config(args):
    """The model's part of a run's config, read off the flags of add_training_arguments (MODEL_DEFAULTS'
    keys; --embedding is the config's `embedding`)."""
    return {key: getattr(args, key) for key in MODEL_DEFAULTS}


def blas_threads(n):
    """A context limiting the BLAS thread pool (OpenBLAS, MKL) to n threads; None leaves it alone.
    Two processes each spinning up a thread per core fight for the cores and both slow down many times.
    More threads than the CPUs this process may run on only fight each other (MKL takes any count it is
    given: --threads 64 on 2 cores trained 10x slower), so n is capped there, with a note on stderr."""
    if n is None:
        return nullcontext()
    cpus = usable_cpus() or n
    if n > cpus:
        print(f"note: --threads {n} is more than the {cpus} CPUs this process may run on; using {cpus}",
              file=sys.stderr)
        n = cpus
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n, user_api="blas")


def usable_cpus():
    """The CPUs this process may run on (its affinity, where the system says; None where it cannot tell)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def note_engine_on_cpu(engine, device):
    """Notes on stderr where the engine runs slower on this CPU than it could: --engine fast-split sharing one CPU
    between its two processes (`taskset -c 0`, a container of one CPU: its halves take turns, 15% slower than the
    fast engine for train's 2 x 256 LSTM, AMD EPYC, 2026-12-06); a fast engine on an Intel CPU without MKL, whose
    matrix products then run on NumPy's OpenBLAS (README "Set-up": the book's run in 0.71-0.78 of the time
    with MKL on an Intel Xeon), where SCRATCHRNN_BLAS leaves the choice to the CPU (auto)."""
    if device != "cpu" or engine not in ("fast", "fast-split"):
        return
    if engine == "fast-split" and (usable_cpus() or 2) < 2:
        print("note: --engine fast-split computes each chunk's two halves on two cores, and this process may run on "
              "one CPU, where they take turns; --engine fast is faster here", file=sys.stderr)
    if mkl.setting() == "auto" and mkl.intel_cpu() and mkl.load()[0] is None:
        print(f"note: on this Intel CPU the fast engine's matrix products run on NumPy's OpenBLAS; with Intel's MKL "
              f"({mkl.INSTALL}, about 1 GB) they run faster (the book's deep LSTM in 0.71-0.78 of the time "
              f"on an Intel Xeon); {mkl.VARIABLE}=numpy keeps OpenBLAS without this note", file=sys.stderr)


def prepare_out_dir(path):
    """Create the output folder and prove it can be written, before any training starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output directory {str(path)!r} is a file, not a folder; give --out a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"output directory {str(path)!r} cannot be written: {e.strerror or e}") from None
    return path


@contextmanager
def hold_out_dir(path):
    """While a training writes into its run folder, no other may: a second `scratchrnn train` there (a resume of it,
    an --overwrite, a new run) would write its checkpoints and metrics between the first's, or delete them. An
    advisory lock (flock) on the folder itself, held for the block: the kernel lets go of it when the process ends,
    however it ends, so no stale lock is ever left, and no lock file either. Where the system or the filesystem
    has no such lock (not POSIX; some network filesystems) the folder is not held."""
    try:
        import fcntl
    except ImportError:                          # not a POSIX system
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{path} is in use: another scratchrnn train is writing into it now; let it end, or "
                              f"stop it first (Ctrl-C saves it, and --resume {quoted(path)} continues it), or use "
                              "another --out") from None
        except OSError:                          # a filesystem without locks
            pass
        yield
    finally:
        os.close(fd)                             # (closing lets go of the lock)


def prepare_out_file(path, flag):
    """A file the run writes at its end (--save): its folder must exist and take a file, checked before any
    training, so that a run is never lost at its last line."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {str(folder)!r} does not exist")
    prepare_out_dir(folder)
    return Path(path)


def terminal_fds():
    """Which of standard output and error (1, 2) are a terminal now (after a hang-up a terminal no longer says so)."""
    return [fd for fd in (1, 2) if os.isatty(fd)]


def leave_hung_up_terminal(fds):
    """After SIGHUP (the ssh connection dropped, the terminal's window closed) every write to the terminal fails (EIO),
    and the first would end a training before it saves: `fds`, those that were a terminal (terminal_fds at the start),
    are pointed at os.devnull, as nohup would have had them. A log file or a pipe stays as it was."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in fds:
        os.dup2(devnull, fd)
    os.close(devnull)


class StandardOutput:
    """sys.stdout, whose writes that fail say so in one line: `scratchrnn generate ... > out.txt` on a full disk
    (ENOSPC) or an output device that fails (EIO) raise OutputLost (each was a traceback); a closed pipe stays a
    BrokenPipeError (with_one_line_errors ends it quietly). Characters its encoding cannot write (a Chinese model's
    text where the locale is Latin-1, or PYTHONIOENCODING=ascii) are written as \\u escapes, with a note the first
    time (they were a UnicodeEncodeError traceback). Everything else is the stream's own."""

    def __init__(self, stream):
        self.stream, self.escaping = stream, False

    def write(self, text):
        try:
            return self._guarded(self.stream.write, text)
        except UnicodeEncodeError:
            encoding = self.stream.encoding
            try:
                encoded = text.encode(encoding, "surrogateescape")      # a path's bytes that are not UTF-8, no more
            except UnicodeEncodeError:
                if not self.escaping:
                    self.escaping = True
                    tell(f"note: standard output's encoding ({encoding}) cannot write every character of the text: "
                         f"those it cannot are written as \\u escapes (PYTHONIOENCODING=utf-8 writes them as they are)")
                encoded = text.encode(encoding, PATH_BYTES)
            if not hasattr(self.stream, "buffer"):                      # a stream of text alone (a test's StringIO)
                return self._guarded(self.stream.write, encoded.decode(encoding, "backslashreplace"))
            self.flush()                                                # what the stream holds goes first
            self._guarded(self.stream.buffer.write, encoded)
            self._guarded(self.stream.buffer.flush)
            return len(text)

    def flush(self):
        return self._guarded(self.stream.flush)

    @staticmethod
    def _guarded(method, *args):
        try:
            return method(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputLost(e.strerror or e) from None

    def __getattr__(self, name):
        return getattr(self.stream, name)


def leave_stdout():
    """Point standard output at os.devnull: what is still buffered for it, and the interpreter flushes at exit, would
    fail again ("Exception ignored ... BrokenPipeError", or ENOSPC) after the one line that said why."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):                     # a stdout with no file descriptor
        pass


def tell(line):
    """A line on stderr, where one can still be written (`> log 2>&1` on a full disk: it cannot, and the exit status
    says what happened)."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


def with_one_line_errors(program, *args):
    """Run program(*args); our errors (ScratchRNNError) become one line on stderr and exit status
    EXIT_ERROR, Ctrl-C becomes 'interrupted' and EXIT_INTERRUPTED, a MemoryError one line and EXIT_ERROR. A closed
    pipe (`scratchrnn generate ... | head`: the reader has what it wanted) ends the program quietly with
    EXIT_PIPE_CLOSED, as SIGPIPE ends a Unix tool (Python ignores SIGPIPE, so the write raises instead); `train`
    saves where it stands first (run_training). Standard output that cannot be written is one line (StandardOutput).
    Anything else is a bug, and keeps its traceback."""
    # Each line reaches a pipe as it is written (`| tee log` shows the epochs as they end; Python buffers a pipe in
    # blocks), so a closed pipe is met at the line that writes to it, here, and not in the interpreter's last flush.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    if hasattr(sys.stderr, "reconfigure"):                  # a path named in a line, as its bytes (errors.PATH_BYTES)
        sys.stderr.reconfigure(errors=PATH_BYTES)
    stdout, sys.stdout = sys.stdout, StandardOutput(sys.stdout)
    try:
        return program(*args)
    except OutputLost as e:
        leave_stdout()
        tell(f"error: {e}")
        sys.exit(EXIT_ERROR)
    except ScratchRNNError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except MemoryError:                          # what the checks before allocating did not foresee: still one line
        print("error: out of memory: this machine could not allocate what was asked (a smaller corpus, --hidden or "
              "--batch-size needs less); a run's last checkpoint is kept", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        leave_stdout()
        sys.exit(EXIT_PIPE_CLOSED)
    finally:
        sys.stdout = stdout
