"""Small helpers for the book's exercises (examples/exercises/): train one configuration and return
what a table needs; print tables; save plots. The mathematics stays in cells/, model.py and train.py."""
import argparse
import functools
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cmdline import OneLineParser, note_engine_on_cpu, pyplot, user_path, with_one_line_errors
from .data import SeqDataLoader, load_corpus
from .errors import DataError, TrainingDiverged
from .model import MODEL_DEFAULTS, RNNLM, model_from_config
from .train import evaluate, train_epoch


@dataclass
class Run:
    model: RNNLM
    vocab: object
    curve: list = field(default_factory=list)          # training perplexity per epoch
    val_ppl: float = math.nan
    tokens_per_s: float = math.nan
    seconds: float = 0.0
    diverged_at: int = None                            # epoch in which the loss became non-finite
    grad_norms: list = field(default_factory=list)     # before clipping, every step

    @property
    def ppl(self):
        return self.curve[-1] if self.curve else math.nan

    @property
    def epochs(self):
        return len(self.curve)


def split(corpus, val_fraction):
    n_val = int(len(corpus) * val_fraction)
    return (corpus, None) if n_val == 0 else (corpus[:-n_val], corpus[-n_val:])


@functools.lru_cache(maxsize=None)
def note_engine_once(engine, device):
    """cmdline.note_engine_on_cpu (MKL not installed on an Intel CPU, say) once in a process, however many runs an
    exercise trains, as the command and the book's examples say it once."""
    note_engine_on_cpu(engine, device)


def train_run(cell="lstm", layers=1, hidden=128, lr=1.0, theta=1.0, epochs=50, seconds=None, random_iter=False,
              corpus=None, charset="book", max_tokens=10000, val_fraction=0.0, batch_size=32, num_steps=35,
              nonlinearity="tanh", embedding_dim=None, init="pytorch", seed=0, data=None, val=None):
    """Train one configuration for `epochs` epochs (or until `seconds` have passed) and measure it.
    data: an already loaded (corpus, vocab), to share it between runs; val: validation tokens given
    explicitly (then all of data's corpus is for training), instead of the tail cut by val_fraction."""
    tokens, vocab = data or load_corpus(corpus, max_tokens=max_tokens, charset=charset)
    train, val = (tokens, val) if val is not None else split(tokens, val_fraction)
    need = SeqDataLoader.tokens_needed(batch_size, num_steps)
    if len(train) < need:                     # (the loader's line names sizes an exercise takes no flag for)
        raise DataError(f"the text has {len(train):,} tokens to train on, too few for the exercise's minibatch of "
                        f"{batch_size} x {num_steps} (needs at least {need:,}): use a longer text")
    model = model_from_config(dict(cell=cell, layers=layers, hidden=hidden, nonlinearity=nonlinearity, init=init,
                                   seed=seed, embedding=embedding_dim), len(vocab))
    note_engine_once(MODEL_DEFAULTS["engine"], model.device)
    loader = SeqDataLoader(train, batch_size, num_steps, random_iter, seed=seed)
    run = Run(model, vocab)
    speeds, start = [], time.perf_counter()
    for epoch in range(epochs):
        try:
            with np.errstate(all="ignore"):
                ppl, speed = train_epoch(model, loader, lr, theta, random_iter,
                                         on_step=lambda pos, norm: run.grad_norms.append(float(norm)))
        except TrainingDiverged:
            run.diverged_at = epoch + 1
            break
        run.curve.append(ppl)
        speeds.append(speed)
        if seconds is not None and time.perf_counter() - start > seconds:
            break
    run.seconds = time.perf_counter() - start
    run.tokens_per_s = statistics.median(speeds) if speeds else math.nan
    if val is not None and run.diverged_at is None:
        run.val_ppl = evaluate(model, val, batch_size, num_steps)
    return run


def at(curve, epoch):
    """Perplexity after `epoch` epochs, '-' when the run did not get there."""
    if len(curve) < epoch:
        return "-"
    value = curve[epoch - 1]
    return f"{value:.2f}" if value < 1e4 else f"{value:.2g}"


def table(header, rows):
    from tabulate import tabulate
    text = tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)
    print(text + "\n")
    return text


def plot_curves(path, curves, title, ylabel="training perplexity", logy=True):
    """curves: {label: list of values per epoch} -> PNG at `path`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"picture: {path}")


def parser(doc):
    """The common flags: --quick (tiny sizes, for tests) and --out (where PNGs go). A bad flag is one line."""
    p = OneLineParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs, in seconds")
    p.add_argument("--out", type=user_path, default="exercise-output", help="folder for pictures")
    return p


def run_exercise(main, args_parser):
    """Parse the flags and run the exercise's main(args): a missing corpus, an unknown prefix or a bad
    checkpoint is one line on stderr and exit status 2, as everywhere in scratchrnn."""
    with_one_line_errors(main, args_parser.parse_args())


def out_dir(args):
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    return path
