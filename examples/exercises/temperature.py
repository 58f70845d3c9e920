"""Exercise: sampling with a temperature instead of greedy prediction.

Greedy prediction always takes the most likely next character and soon repeats itself. Sampling from
softmax(logits / T) trades that for variety: T < 1 sharpens the distribution, T > 1 flattens it.

    python examples/exercises/temperature.py [--epochs 150]          # trains a 1-layer GRU first
    python examples/exercises/temperature.py --from runs/mybook      # or uses a checkpoint of `scratchrnn train`
"""
import re
from pathlib import Path

from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    from scratchrnn.cmdline import positive_int, user_path
    from scratchrnn.data import TIME_MACHINE, load_corpus, preprocess_book
    from scratchrnn.experiments import parser, run_exercise, table, train_run
    from scratchrnn.train import predict, prefix_tokens

args_p = parser(__doc__)
args_p.add_argument("--epochs", type=positive_int, default=150)
args_p.add_argument("--from", dest="from_dir", type=user_path, default=None)
args_p.add_argument("--prefix", default="the time traveller")


def main(args):
    if args.from_dir:
        from scratchrnn.checkpoint import load_run, model_from_checkpoint
        folder = Path(args.from_dir)
        path = folder / ("best.npz" if (folder / "best.npz").exists() else "last.npz")
        arrays, manifest = load_run(path)
        model, vocab = model_from_checkpoint(arrays, manifest, path=path)
    else:
        prefix_tokens(args.prefix, load_corpus()[1])          # a bad prefix stops here, before training
        run = train_run("gru", 1, 32 if args.quick else 256, lr=1.0, epochs=3 if args.quick else args.epochs)
        model, vocab = run.model, run.vocab
        print(f"trained a GRU for {run.epochs} epochs: perplexity {run.ppl:.2f}")
    known = set(" ".join(preprocess_book(TIME_MACHINE.read_text())).split())
    rows = []
    for temperature in (0.0, 0.5, 0.8, 1.0, 1.5):
        for seed in ((0,) if temperature == 0 else (0, 1)):
            text = predict(args.prefix, 60, model, vocab, temperature=temperature, seed=seed)[len(args.prefix):]
            words = re.findall(r"[a-z]+", text)
            real = sum(w in known for w in words) / max(1, len(words))
            rows.append(["greedy" if temperature == 0 else f"{temperature:g} (seed {seed})", repr(text),
                         len(set(text)), f"{real:.0%}"])
    table(["temperature", f"continuation of {args.prefix!r}", "distinct characters", "words of the book"], rows)


if __name__ == "__main__":
    run_exercise(main, args_p)
