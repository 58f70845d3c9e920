"""The book's training runs as command-line programs (examples/train_rnn_scratch.py, train_deep_lstm.py).

Prints what d2l.ai's `train_ch8` prints: the perplexity along the way with a sample every 10 epochs,
then `perplexity P, N tokens/sec on DEVICE` and predictions for the book's prefixes.
"""
import argparse
import sys
import time

from tqdm import tqdm

from .backend import DEVICES, device_name, gpu_unusable_reason, resolve_device
from .data import SeqDataLoader, load_corpus
from .errors import ConfigError, ScratchRNNError
from .model import ENGINES, INITS, RNNLM
from .train import check_hyperparameters, predict, prefix_tokens, train_epoch

BOOK_PREFIXES = ("time traveller", "traveller")
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130          # a user's error (one line on stderr); Ctrl-C


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), not the whole usage block."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def add_training_arguments(p, defaults):
    """The flags shared by the book's examples and `scratchrnn train`."""
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to train; auto picks the GPU when CuPy finds one")
    p.add_argument("--cell", choices=("rnn", "gru", "lstm"), default=defaults["cell"])
    p.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh", help="for --cell rnn")
    p.add_argument("--layers", type=positive_int, default=defaults["layers"])
    p.add_argument("--hidden", type=positive_int, default=defaults["hidden"])
    p.add_argument("--epochs", type=positive_int, default=defaults.get("epochs", 500))
    p.add_argument("--lr", type=positive_float, default=defaults["lr"])
    p.add_argument("--theta", type=positive_float, default=1.0, help="gradient clipping threshold")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--num-steps", type=positive_int, default=35)
    p.add_argument("--random-iter", action="store_true",
                   help="random sampling (state re-initialised each minibatch) instead of sequential")
    p.add_argument("--corpus", action="append", default=None, metavar="PATH",
                   help="UTF-8 text file to train on; repeat for several (default: the Time Machine, shipped)")
    p.add_argument("--max-tokens", type=int, default=10000,
                   help="keep the first N tokens, as the book does; -1 keeps the whole text")
    p.add_argument("--full-text", action="store_true", help="same as --max-tokens -1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=INITS, default=defaults["init"],
                   help="pytorch: U(-1/sqrt(H), 1/sqrt(H)); normal: the book's N(0, 0.01^2) weights, zero biases")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="fast (Numba / CUDA kernels) or the readable NumPy reference")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--embedding", type=positive_int, default=None, metavar="D",
                   help="a learnable embedding of size D instead of one-hot input")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="BLAS threads on the CPU (default: all cores); use 1 when running several trainings at once")
    return p


def blas_threads(n):
    """A context limiting the BLAS thread pool (OpenBLAS, MKL) to n threads; None leaves it alone.
    Two processes each spinning up a thread per core fight for the cores and both slow down many times."""
    from contextlib import nullcontext
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n, user_api="blas")


def build_parser(description, defaults):
    p = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_training_arguments(p, defaults)
    p.add_argument("--prefix", action="append", default=None,
                   help="prefix to warm up on and continue (default: the book's two)")
    p.add_argument("--num-preds", type=positive_int, default=50)
    p.add_argument("--save", metavar="PATH.npz", default=None,
                   help="write the trained weights (PyTorch names) to this .npz")
    return p


def max_tokens_of(args):
    max_tokens = -1 if args.full_text else args.max_tokens
    if max_tokens == 0 or max_tokens < -1:
        raise ConfigError(f"--max-tokens must be positive or -1 (got {max_tokens})")
    return max_tokens


def run(args):
    check_hyperparameters(args.lr, args.epochs, args.theta)
    corpus, vocab = load_corpus(args.corpus, max_tokens=max_tokens_of(args))
    device = resolve_device(args.device)
    if args.device == "auto":
        why = "" if device == "gpu" else f" ({gpu_unusable_reason()})"
        print(f"device: auto picked {device}{why}", file=sys.stderr)
    train_iter = SeqDataLoader(corpus, args.batch_size, args.num_steps, args.random_iter, seed=args.seed)
    model = RNNLM(len(vocab), args.hidden, args.layers, args.cell, nonlinearity=args.nonlinearity,
                  device=device, dtype=args.dtype, init=args.init, seed=args.seed, engine=args.engine,
                  embedding_dim=args.embedding)
    prefixes = args.prefix or [p for p in BOOK_PREFIXES if all(ch in vocab.token_to_idx for ch in p)]
    for prefix in prefixes:
        prefix_tokens(prefix, vocab)                             # a bad prefix stops here, before training
    print(f"{args.layers}-layer {args.cell.upper()} ({args.hidden} hidden, {model.num_parameters():,} parameters, "
          f"{model.engine_name} engine) on {len(corpus):,} tokens, vocabulary {len(vocab)}, {device_name(device)}")

    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="training", unit="epoch", disable=not sys.stderr.isatty())
    for epoch in bar:
        ppl, speed = train_epoch(model, train_iter, args.lr, args.theta, args.random_iter)
        bar.set_postfix(perplexity=f"{ppl:.2f}", tokens_per_s=f"{speed:,.0f}")
        if (epoch + 1) % 10 == 0:
            sample = predict(prefixes[0], args.num_preds, model, vocab) if prefixes else ""
            tqdm.write(f"epoch {epoch + 1:4d}  perplexity {ppl:6.2f}  {sample}")
    wall = time.perf_counter() - start

    print(f"perplexity {ppl:.1f}, {speed:.1f} tokens/sec on {device_name(device)}")
    for prefix in prefixes:
        print(predict(prefix, args.num_preds, model, vocab))
    print(f"wall time {wall:.1f} s for {args.epochs} epochs")
    if args.save:
        model.save_weights(args.save)
        print(f"weights saved to {args.save}")
    return ppl


def with_one_line_errors(program, *args):
    """Run program(*args); our errors (ScratchRNNError) become one line on stderr and exit status 2,
    Ctrl-C becomes 'interrupted' and 130. Anything else is a bug, and keeps its traceback."""
    try:
        return program(*args)
    except ScratchRNNError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


def main(description, defaults, argv=None):
    """Parse, run, and turn our errors into one line on stderr and exit status 2."""
    args = build_parser(description, defaults).parse_args(argv)

    def program():
        with blas_threads(args.threads):
            run(args)
    with_one_line_errors(program)
