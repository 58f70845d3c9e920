"""The book's training runs as command-line programs (examples/train_rnn_scratch.py, train_deep_lstm.py).

Prints what d2l.ai's `train_ch8` prints: the perplexity along the way with a sample every 10 epochs,
then `perplexity P, N tokens/sec on DEVICE` and predictions for the book's prefixes.
"""
import sys
import time

from tqdm import tqdm

from .backend import device_name, gpu_unusable_reason, resolve_device
from .checkpoint import save_weights
from .cmdline import (DefaultsHelpFormatter, OneLineParser, add_training_arguments, blas_threads, learning_rate_of,
                      max_tokens_of, model_config, note_engine_on_cpu, optimizer_config, positive_int,
                      prepare_out_file, user_path, with_one_line_errors)
from .data import SeqDataLoader, load_corpus
from .model import model_from_config
from .optimizers import optimizer_from_config
from .schedules import check_schedule, rate_of
from .train import check_hyperparameters, predict, prefix_tokens, train_epoch

BOOK_PREFIXES = ("time traveller", "traveller")


def build_parser(description, defaults):
    """The book's flags: every training flag (cmdline.add_training_arguments) with the run's `defaults`."""
    p = OneLineParser(description=description, formatter_class=DefaultsHelpFormatter)
    add_training_arguments(p, defaults)
    p.add_argument("--prefix", action="append", default=None,
                   help="prefix to warm up on and continue (default: the book's two)")
    p.add_argument("--num-preds", type=positive_int, default=50)
    p.add_argument("--save", type=user_path, metavar="PATH.npz", default=None,
                   help="write the trained weights (PyTorch names) to this .npz")
    return p


def run(args):
    lr = learning_rate_of(args)
    check_hyperparameters(lr, args.epochs, args.theta)
    recipe = dict(optimizer_config(args), lr=lr, epochs=args.epochs)            # SGD at a constant rate: the book's
    check_schedule(recipe)
    if args.save:
        prepare_out_file(args.save, "--save")                # checked now, not after the whole run
    corpus, vocab = load_corpus(args.corpus, max_tokens=max_tokens_of(args))
    device = resolve_device(args.device)
    if args.device == "auto":
        why = "" if device == "gpu" else f" ({gpu_unusable_reason()})"
        print(f"device: auto picked {device}{why}", file=sys.stderr)
    note_engine_on_cpu(args.engine, device)
    train_iter = SeqDataLoader(corpus, args.batch_size, args.num_steps, args.random_iter, seed=args.seed)
    model = model_from_config(model_config(args), len(vocab), device, args.batch_size, args.num_steps)
    optimizer = optimizer_from_config(recipe, model)
    prefixes = args.prefix or [p for p in BOOK_PREFIXES if all(ch in vocab.token_to_idx for ch in p)]
    for prefix in prefixes:
        prefix_tokens(prefix, vocab)                             # a bad prefix stops here, before training
    print(f"{args.layers}-layer {args.cell.upper()} ({args.hidden} hidden, {model.num_parameters():,} parameters, "
          f"{model.engine_name}) on {len(corpus):,} tokens, vocabulary {len(vocab)}, {device_name(device)}")

    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="training", unit="epoch", disable=not sys.stderr.isatty())
    for epoch in bar:
        rate = rate_of(recipe, epoch, train_iter.batches_per_epoch())
        ppl, speed = train_epoch(model, train_iter, rate, args.theta, args.random_iter, optimizer=optimizer)
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
        save_weights(model, args.save)
        print(f"weights saved to {args.save}")
    return ppl


def main(description, defaults, argv=None):
    """Parse, run, and turn our errors into one line on stderr and exit status 2."""
    args = build_parser(description, defaults).parse_args(argv)

    def program():
        with blas_threads(args.threads):
            run(args)
    with_one_line_errors(program)
