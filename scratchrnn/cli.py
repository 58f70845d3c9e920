"""The `scratchrnn` command (also `python -m scratchrnn`).

    scratchrnn train     --corpus book.txt --out runs/book [--val-fraction 0.1] [--plot] [--resume DIR]
    scratchrnn generate  --from runs/book --prefix "time traveller" --length 100 [--temperature 0.8 --seed 1]
    scratchrnn evaluate  --from runs/book --corpus test.txt
    scratchrnn gradcheck --cell lstm --layers 2
    scratchrnn diagnose  --out runs/diagnose
    scratchrnn selftest  [--device gpu]

Every error a user can cause is one line on stderr and a non-zero exit status, never a traceback.
"""
import argparse
import contextlib
import copy
import csv
import io
import math
import os
import signal
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, diagnose
from .backend import DEVICES, device_name, human_bytes, numpy_blas_threads, processor, resolve_device
from .cells import CELLS
from .checkpoint import (atomic_write, check_arrays, load_run, model_from_checkpoint, position_in, save_run,
                         unfinished_writes, weights_in, with_new_tokens)
from .cmdline import (CorpusPaths, DefaultsHelpFormatter, OneLineParser, add_model_arguments, add_selftest_arguments,
                      add_training_arguments, blas_threads, command_line_flags, every_or_off, hold_out_dir,
                      learning_rate_of, leave_hung_up_terminal, leave_stdout, max_tokens_of, model_config,
                      note_engine_on_cpu, optimizer_config, positive_float, positive_int, prepare_out_dir, pyplot,
                      seed_int, tell, terminal_fds, usable_cpus, user_path, with_one_line_errors)
from .optimizers import HYPERPARAMETERS, optimizer_from_config
from .schedules import SCHEDULE_DEFAULTS, check_schedule, rate_of
from .data import (CHARSETS, STDIN, TOKENS, SeqDataLoader, Vocab, check_not_web_address, corpus_digest, file_digest_of,
                   load_corpus, normalize, read_as_text)
from .engines import ENGINES
from .errors import (EXIT_DIVERGED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, CheckpointError, ConfigError,
                     DataError, EmptyText, OutputLost, ScratchRNNError, TrainingDiverged, WorkerError, quoted)
from .model import MODEL_DEFAULTS, model_from_config
from .train import (TRAIN_DEFAULTS, EvaluationInterrupted, check_converging, check_hyperparameters, evaluate,
                    evaluation_rows, generate, perplexity, train_epoch)

# The config of a run, as its checkpoint keeps it: the model's keys (model.MODEL_DEFAULTS) and these.
RUN_KEYS = ("epochs", "lr", "theta", "batch_size", "num_steps", "random_iter", "corpus", "max_tokens", "tokens",
            "charset", "min_freq", "val_fraction")
# How a run is saved and watched, kept in its config too: a resume goes on saving, logging, validating, sampling,
# plotting and stopping (--patience) as the run was started (a flag given again replaces the run's own; 0 turns an
# every-steps flag, --sample or --patience off, --no-plot the plot), as --engine is kept. --device, --threads and
# --max-minutes are each call's own.
WATCH_KEYS = ("save_every", "save_every_steps", "log_every", "log_every_steps", "validate_every_steps", "sample",
              "plot", "patience")


# ----------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------

def split_validation(corpus, fraction, batch_size, num_steps):
    """The tail of the corpus (a fraction of its tokens) is held out for validation: at least one chunk of it,
    and the whole text, then what it leaves to train on, at least one minibatch."""
    if not (0 <= fraction < 1):
        raise ConfigError(f"--val-fraction must be in [0, 1) (got {fraction})")
    n_val = int(len(corpus) * fraction)
    SeqDataLoader.check_length(len(corpus), batch_size, num_steps, trained=len(corpus) - n_val)
    if fraction > 0 and n_val < num_steps + 1:                    # (0 tokens too: it trained with no validation)
        raise DataError(f"--val-fraction {fraction:g} holds out {n_val} of the corpus's {len(corpus):,} tokens, fewer "
                        f"than one chunk of {num_steps}; raise it, or use --val-fraction 0")
    if n_val == 0:
        return corpus, None
    need = SeqDataLoader.tokens_needed(batch_size, num_steps)
    if len(corpus) - n_val < need:
        fit = SeqDataLoader.sizes_that_fit(len(corpus) - n_val, num_steps)
        raise DataError(f"--val-fraction {fraction} holds out {n_val:,} of the corpus's {len(corpus):,} tokens, "
                        f"leaving {len(corpus) - n_val:,} to train on, too few for one minibatch of {batch_size} x "
                        f"{num_steps} (needs at least {need:,}); lower --val-fraction" + (f", or {fit}" if fit else ""))
    return corpus[:-n_val], corpus[-n_val:]


def build(config, device, vocab=None, report=None, grow=False, manifest=None):
    """Corpus, vocabulary, train/validation split, data loader and model from a run's config. vocab: the
    vocabulary to read the text with (a run that started from another's weights keeps that run's); None
    builds it from the text. The model's memory is checked before anything is allocated. Also returns what
    identifies the text, which the checkpoints keep: the digest of its token ids (data.corpus_digest) and of each
    of its files (data.file_digest; none for the shipped book). The text's notes (report's: a charset's losses, new
    tokens, --min-freq's <unk>) are told once the text and the model are known to do: a text too short, a model too
    large, is the one line of its refusal. manifest: a resume's checkpoint's, whose digests of its files spare a
    long text's count of its tokens where they are the same (data.load_corpus's known)."""
    files, notes = {}, []
    known = None if manifest is None else (manifest["vocab"], manifest.get("corpus_files"))
    corpus, vocab = load_corpus(config["corpus"], max_tokens=config["max_tokens"], token=config["tokens"],
                                charset=config["charset"], vocab=vocab, report=notes.append, progress=report,
                                min_freq=config.get("min_freq", IMPLIED["min_freq"]), digests=files, grow=grow,
                                known=known)
    B, T = config["batch_size"], config["num_steps"]
    train, val = split_validation(corpus, config["val_fraction"], B, T)
    loader = SeqDataLoader(train, B, T, config["random_iter"], config["seed"])
    model = model_from_config(config, len(vocab), device, B, T)
    if report is not None:
        for line in notes:
            report(line)
    text_id = dict(corpus_digest=corpus_digest(corpus), corpus_files=files)
    return vocab, loader, val, model, text_id


def write_csv(path, fields, rows):
    """A table, rewritten whole (atomically); an empty field where a row has no value (None, as csv writes it)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def write_metrics(out, history, steps=()):
    """metrics.csv, one row per epoch, from the history kept in the checkpoint; steps.csv, where there are rows inside
    the epochs (--log-every-steps, --validate-every-steps): the epoch's training perplexity so far, a validation."""
    write_csv(out / "metrics.csv", ["epoch", "train_perplexity", "val_perplexity", "tokens_per_s", "elapsed_s", "lr"],
              history)
    if steps:
        write_csv(out / "steps.csv", ["epoch", "minibatch", "minibatches", "train_perplexity", "val_perplexity"],
                  steps)


def plot_perplexity(out, history, steps=()):
    """perplexity.png: training and validation perplexity per epoch, like the book's training plot, with the rows
    measured inside the epochs (steps) where there are some, at their fraction of the epoch."""
    plt = pyplot()
    points = sorted([(h["epoch"], h) for h in history]
                    + [(s["epoch"] - 1 + s["minibatch"] / s["minibatches"], s) for s in steps], key=lambda p: p[0])
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for key, label in (("train_perplexity", "train"), ("val_perplexity", "validation")):
        measured = [(x, row[key]) for x, row in points if row[key] is not None]
        if measured:
            ax.plot(*zip(*measured), label=label, marker="." if len(measured) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    atomic_write(out / "perplexity.png", lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def config_from_args(args):
    """A new run's config: the model's part (cmdline.model_config), RUN_KEYS, WATCH_KEYS, the optimiser and schedule."""
    config = {**model_config(args), **{key: getattr(args, key) for key in RUN_KEYS + WATCH_KEYS},
              **optimizer_config(args)}
    config["max_tokens"] = max_tokens_of(args)
    config["corpus"] = corpus_paths(args.corpus)
    config["epochs"] = args.epochs or TRAIN_DEFAULTS["epochs"]
    config["lr"] = learning_rate_of(args)
    return config


def corpus_paths(paths):
    """A run's text files as its config keeps them: absolute, links resolved; standard input (-) as it is, and a
    pipe (`<(zcat book.txt.gz)`: /dev/fd/63) not resolved, which would name no file ('/proc/PID/fd/pipe:[N]')."""
    def kept(path):
        check_not_web_address(path)                                    # (resolved, it would name no file)
        return path if path == STDIN else os.path.abspath(path) if Path(path).is_fifo() else str(Path(path).resolve())
    return [kept(c) for c in paths] if paths else None


# A run's log has a line at least this often: where no other line came for this long, the next minibatch's line
# says how the epoch goes (its training perplexity so far, as --log-every-steps). The lines of a long text's epochs
# (38 minutes each on a 56 MiB text) came every --log-every of them (10: six hours) before.
QUIET_AT_MOST_S = 600

# What a resume honours; every other flag describes the run, and must agree with its checkpoint.
# --corpus (last: the refusal's line says what it means): where the run's text is now (moved, or on another
# machine), checked to be the same text.
RESUME_HONOURS = ("resume", "epochs", "device", "engine", "threads", "save_every", "save_every_steps", "log_every",
                  "log_every_steps", "validate_every_steps", "sample", "plot", "patience", "max_minutes", "corpus")
# What --init-from takes from the run it starts from: the model's shape and how its text was read.
INHERITED = ("cell", "nonlinearity", "layers", "hidden", "init", "dtype", "embedding", "tokens", "charset", "min_freq")


def flag_value(args, dest):
    """(config key, value) that a flag given on the command line stands for."""
    if dest in ("max_tokens", "full_text"):
        return "max_tokens", max_tokens_of(args)
    if dest == "corpus":
        return "corpus", corpus_paths(args.corpus)
    return dest, getattr(args, dest)


# What a run's config means by a key it lacks (a checkpoint of an older scratchrnn): the value then in use.
IMPLIED = {**MODEL_DEFAULTS, **SCHEDULE_DEFAULTS, "optimizer": "sgd", **{k: None for k in HYPERPARAMETERS},
           "min_freq": 1}


def refuse_contradictions(args, dests, config, whose, advice):
    """Each flag of `dests` given with a value other than the run's: one line naming both."""
    for dest in sorted(dests & args.given):
        key, value = flag_value(args, dest)
        if key not in config and key not in IMPLIED:
            continue
        theirs = config.get(key, IMPLIED.get(key))
        if theirs != value:
            shown = " ".join(value) if isinstance(value, list) else value
            theirs = " ".join(theirs) if isinstance(theirs, list) else theirs
            raise ConfigError(f"--{dest.replace('_', '-')} {shown} contradicts {whose}'s {theirs}; {advice}")


def checkpoint_in(folder, prefer="best"):
    """A run folder's checkpoint (best.npz when asked for and there, else last.npz), or the file itself. A path
    that is neither (nothing there; a text, given where its run was meant) is one line saying what is wanted."""
    folder = Path(folder)
    wanted = "a run folder (what train --out wrote) or a checkpoint .npz"
    if not folder.exists():
        raise CheckpointError(f"{folder} does not exist; give {wanted}")
    if folder.is_file():
        if folder.suffix != ".npz" and not zipfile.is_zipfile(folder):
            raise CheckpointError(f"{folder} is not a checkpoint; give {wanted}")
        return folder
    if not any((folder / name).exists() for name in ("best.npz", "last.npz")):
        raise CheckpointError(f"{folder} holds no checkpoint (best.npz or last.npz: its run had not written one, or "
                              f"it is not a run's folder); give {wanted}")
    return folder / ("best.npz" if prefer == "best" and (folder / "best.npz").exists() else "last.npz")


DEFAULT_RUN = "scratchrnn-run"          # train's --out and generate's --from, none given: train, then generate
RUN_FILES = ("last.npz", "best.npz", "metrics.csv", "steps.csv", "perplexity.png")    # what a run writes in its folder


def remove_unfinished_writes(out, report):
    """The temporary files of a run's writes that a killed process left in its folder (checkpoint.unfinished_writes),
    removed by the training that now holds it, with a note."""
    left = unfinished_writes(out, RUN_FILES)
    size = sum(p.stat().st_size for p in left)
    for p in left:
        p.unlink()
    if left:
        report(f"note: removed {len(left)} unfinished write{'s' * (len(left) > 1)} of a process killed while it "
               f"saved ({', '.join(p.name for p in left)}: {human_bytes(size)})")


# A new run whose vocabulary has more tokens than this has a note on what its size costs and how to make it smaller:
# a word vocabulary of 77,715 gave a 2 x 256 LSTM 100.3 M parameters (99% of them the one-hot input's and the output
# layer's), which trained at 117 tokens/s.
LARGE_VOCABULARY = 10_000


def note_large_vocabulary(model, config, vocab, texts, report):
    """The note of a new run whose vocabulary is larger than LARGE_VOCABULARY: the weights that grow with it, and
    --embedding (where the input is one-hot) and --min-freq (where every token is kept), with what each would give;
    none where both are taken.
    texts: the token ids of the text (training and validation), counted for --min-freq 2."""
    V, p = len(vocab), model.params
    if V <= LARGE_VOCABULARY:
        return
    one_hot = not config["embedding"]
    grows = p["W_hq"].size + (p["l0.W_xh"].size if one_hot else p["E"].size)
    ways = []
    if one_hot:
        ways.append(f"--embedding 256 reads each token through 256 learned numbers ({V * 256:,} weights instead of "
                    f"{p['l0.W_xh'].size:,})")
    if config.get("min_freq", 1) == 1:
        counts = sum(np.bincount(ids, minlength=V) for ids in texts if ids is not None)
        once = int(np.count_nonzero(counts == 1))
        ways.append(f"--min-freq 2 reads the {once:,} tokens seen once as <unk> ({once / counts.sum():.1%} of the "
                    f"text), a vocabulary of {V - once:,}")
    if ways:                                                          # (none: both are already taken)
        report(f"note: a vocabulary of {V:,} tokens gives the model {grows:,} of its {model.num_parameters():,} "
               f"parameters (slow to train, quick to overfit); "
               f"{' and '.join(ways)}")


def check_no_run_in(out, overwrite):
    """A new run never writes over another's checkpoints unasked: --out holding a run is one line naming the
    ways on, unless --overwrite. Returns the files of that run that --overwrite deletes (delete_run) once the
    new run has passed every check: an old best.npz left beside the new run's last.npz would be what
    `generate` reads, and a new run refused for its corpus, say, must not have cost the old one."""
    found = [name for name in RUN_FILES if (Path(out) / name).is_file()]
    if not any(name.endswith(".npz") for name in found):
        return []
    if not overwrite:
        raise ConfigError(f"{out} already holds a run ({', '.join(found)}); continue it with --resume {quoted(out)}, "
                          f"start from its weights with --init-from {quoted(out)} --out NEW, use another --out, or "
                          f"add --overwrite to replace it")
    return found


def delete_run(out, found):
    """--overwrite: the old run's files (check_no_run_in's list), deleted before the new run writes anything."""
    for name in found:
        try:
            (Path(out) / name).unlink()
        except OSError as e:
            raise ConfigError(f"--overwrite: cannot delete '{Path(out) / name}': {e.strerror or e}") from None


def missing_folders(path):
    """The folders that creating `path` creates: path and its missing parents, the deepest first."""
    missing = []
    for folder in [Path(path), *Path(path).parents]:
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_empty(folders):
    """Remove these folders (the deepest first) as long as each is empty: what a refused run created."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def check_resume(manifest, vocab, text_id, out):
    """A resume (manifest: its checkpoint's; None for a new run) continues on the text it was trained on: the same
    vocabulary, and the same token ids (text_id: build's; checkpoints written before its digests were kept have
    none). A text refused names the files that changed since, where the checkpoint knows them; one that changed past
    the tokens the run trains on (--max-tokens) is said in a note."""
    if manifest is None:
        return
    which = changed_files(manifest.get("corpus_files"), text_id["corpus_files"])
    if manifest["vocab"] != vocab.idx_to_token:
        raise CheckpointError(f"the corpus now gives a vocabulary of {len(vocab)} tokens, the checkpoint was "
                              f"trained on {len(manifest['vocab'])} different ones{which}; it cannot be resumed on it: "
                              f"train on it from these weights with --init-from {quoted(out)} --out NEW")
    then, now = manifest.get("corpus_digest"), text_id["corpus_digest"]
    if then is not None and then != now:
        what = then_and_now(then, now, "tokens", same=", not the same ones")
        raise CheckpointError(f"the corpus is not the text this run was trained on ({what}{which}); a resume "
                              f"continues on the same text: restore it, or train on the new one from these weights "
                              f"with --init-from {quoted(out)} --out NEW")
    if which:                                  # (--max-tokens: the text changed past the tokens the run trains on)
        print(f"note: the corpus{which[1:]}; its first {int(now.split(':')[0]):,} tokens, which the run trains on, "
              f"are the same, and so is its vocabulary: the run goes on with them", file=sys.stderr)


def note_other_sums(manifest, model, batch_size, given, out):
    """A note where a resume may add up its sums in other orders than its run did, so that it goes on, not to the bits
    of one never stopped, which an exact resume promises. On another engine (the manifest's engine_name against
    model.engine_name) without --engine or --device asking for it: MKL installed or removed since, SCRATCHRNN_BLAS
    changed, --device auto finding a GPU. On the same engine and another processor (a checkpoint carried to another
    machine: its BLAS and our compiled kernels may run other code there). On the same engine and processor with the
    CPU's BLAS on other threads (blas_threads) where the engine's sums follow them (threads_change_sums: MKL,
    OpenBLAS's AVX2 kernels), --threads given or not: another --threads, or the default, every core. None for what a
    checkpoint did not keep."""
    then, now = manifest.get("engine_name"), model.engine_name
    if then is not None and then != now:
        if not {"engine", "device"} & set(given):
            print(f"note: {out} trained on {then}, and resumes on {now}: the same mathematics, but its sums' last "
                  f"bits differ from those of a run never stopped", file=sys.stderr)
        return
    processor_then, processor_now = manifest.get("processor"), processor(model.device)
    if processor_then is not None and processor_then != processor_now:
        print(f"note: {out} trained on {processor_then}, and resumes on {processor_now}: the BLAS and our kernels may "
              f"run other code here, and then the sums' last bits differ from those of a run never stopped",
              file=sys.stderr)
        return
    threads_then, threads_now = manifest.get("blas_threads"), numpy_blas_threads()
    if threads_then is not None and model.engine.threads_change_sums(threads_then, threads_now, batch_size):
        keep = (f"; --threads {threads_then} keeps them" if threads_then <= (usable_cpus() or threads_then) else "")
        print(f"note: {out} trained with its matrix products on {threads_then} thread{'s' * (threads_then != 1)}, and "
              f"resumes on {threads_now}: on {now} the sums' last bits then differ from those of a run never "
              f"stopped{keep}", file=sys.stderr)


def stdin_again(out, why):
    """The refusal of a resume whose run read its text from standard input, which has none now (`why`: 'a terminal
    here', 'empty here'): how to give the same text again."""
    return DataError(f"the run's text came from standard input, {why}; pipe the same text in (cat TEXT | scratchrnn "
                     f"train --resume {quoted(out)}) or give its file: --corpus PATH")


def changed_files(then, now):
    """'; changed since: PATH (N bytes then, M now), ...' for the corpus files whose digests (data.file_digest)
    differ, file by file in the order given (a resume's --corpus may name them where they are now); '' where none
    does, or the checkpoint kept none, or the files are not as many."""
    if not then or len(then) != len(now):
        return ""
    changed = [f"{'standard input' if path == STDIN else path} ({then_and_now(digest_then, digest, 'bytes')})"
               for digest_then, (path, digest) in zip(then.values(), now.items()) if digest_then != digest]
    return "; changed since: " + ", ".join(changed) if changed else ""


def then_and_now(then, now, unit, same=""):
    """'N unit then, M now', or 'N unit then and now' and `same`, from two 'count:hex' digests (data.corpus_digest,
    data.file_digest)."""
    count_then, count_now = int(then.split(":")[0]), int(now.split(":")[0])
    if count_then != count_now:
        return f"{count_then:,} {unit} then, {count_now:,} now"
    return f"{count_now:,} {unit} then and now{same}"


def sample_text(model, vocab, length, seed):
    """`length` tokens from the model as it is, as `generate --temperature 1 --seed` prints them without a prefix (the
    first token drawn uniformly), quoted as Python writes a string (line breaks as \\n): what the log shows with
    --sample. Its own generator; the training's are untouched. A model whose numbers overflow (a ReLU RNN's state has
    no bound) gives the tokens before, and why it stopped: the run goes on."""
    tokens = []
    try:
        for token in generate(None, length, model, vocab, temperature=1.0, seed=seed):
            tokens.append(token)
    except DataError as e:
        return f"{vocab.sep.join(tokens)!r} ({e})"
    return repr(vocab.sep.join(tokens))


VALIDATION_SPEEDUP = 2.5     # a validation pass's tokens/s over the training's (forward only): 2.5-2.75 measured
SPEED_WINDOW_S = 2.0         # the training's speed, for that estimate: over its latest stretch of this many seconds


def expected_validation_s(val_tokens, tokens_per_s):
    """How long a pass over `val_tokens` should take, from the training's tokens/s (before the run has timed a
    validation of its own: --max-minutes leaves room for its closing one from its first seconds)."""
    return val_tokens / (VALIDATION_SPEEDUP * tokens_per_s) if tokens_per_s else 0.0


VALIDATION_SHARE_NOTED = 0.5     # --validate-every-steps whose validations would take more of a run: a note


def a_tenth(flag, tenth, batches):
    """The way on of a note that an every-N-minibatches flag takes most of a run: the N that gives it a tenth, or,
    where that is an epoch or more (`batches`), 0, leaving it to each epoch's end."""
    return (f"{flag} {tenth:,} gives it a tenth" if tenth < batches else
            f"{flag} 0 leaves it to each epoch's end")


def note_validation_share(config, val_tokens, batches, report):
    """--validate-every-steps N reads the whole validation text every N minibatches: where that would take most of
    the run's time (a 56 MiB text's 5.9 M validation tokens every 100 minibatches of 1,120 tokens: 95%), one line says
    so, and which N gives validating a tenth of it (or that each epoch's own validation is enough: `batches` an
    epoch)."""
    every = config["validate_every_steps"]
    if not every or not val_tokens:
        return
    chunk = config["batch_size"] * config["num_steps"]
    validating = val_tokens / VALIDATION_SPEEDUP                   # a pass, in the time of this many trained tokens
    share = validating / (validating + every * chunk)
    if share > VALIDATION_SHARE_NOTED:
        tenth = math.ceil(9 * validating / chunk)                  # N chunks = 9 passes: a tenth
        how_much = "more than 99%" if share > 0.99 else f"about {share:.0%}"
        report(f"note: --validate-every-steps {every:,} reads the {val_tokens:,} validation tokens after every "
               f"{every * chunk:,} trained: {how_much} of the run would go to validating (a pass runs at about "
               f"{VALIDATION_SPEEDUP:g} times the training's tokens/s); "
               f"{a_tenth('--validate-every-steps', tenth, batches)}")


SAVING_SHARE_NOTED = 0.5         # --save-every-steps whose writes take more of a run: a note


def note_saving_share(every, write_s, minibatch_s, batches, report):
    """--save-every-steps N writes last.npz every N minibatches, each write flushed to the disk: where the writes take
    most of the run's time (a 4,000-character vocabulary's small model in minibatches of 2 x 3 tokens, every 4: 82%),
    one line says so, and which N gives writing a tenth of it (or that each epoch's own checkpoint is enough:
    `batches` an epoch). write_s: a write's seconds, as measured; minibatch_s: a minibatch's, at the training's
    speed."""
    share = write_s / (write_s + every * minibatch_s)
    if share > SAVING_SHARE_NOTED:
        tenth = math.ceil(9 * write_s / minibatch_s)                # N minibatches = 9 writes: a tenth
        report(f"note: --save-every-steps {every:,} writes last.npz ({write_s * 1e3:,.0f} ms a write) after every "
               f"{every:,} minibatches ({every * minibatch_s * 1e3:,.0f} ms of training): about {share:.0%} of the "
               f"run goes to writing; {a_tenth('--save-every-steps', tenth, batches)}")


def overflowed(config, row_tokens, trains):
    """Why a pass over rows of `row_tokens` tokens gave no perplexity: the model's numbers left its dtype's range, on
    rows longer than the chunks the run `trains` ("trains", "trained") on. -> (that clause, whether the model is a
    ReLU RNN, whose state has no bound)."""
    resets = ", each from a zero state" if config["random_iter"] else ""
    return (f"the model's numbers left {config['dtype']}'s range within its rows of {row_tokens:,} tokens (it {trains} "
            f"on chunks of {config['num_steps']}{resets}), so its perplexity there is not a number",
            config["cell"] == "rnn" and config.get("nonlinearity") == "relu")


def place_in_run(epoch_done, batch):
    """Where a run stands, as its lines say it: 'at epoch 3, minibatch 1,200' inside an epoch (epoch_done 2, batch
    1200), 'after epoch 2' at an epoch's end (batch 0)."""
    return f"at epoch {epoch_done + 1}, minibatch {batch:,}" if batch else f"after epoch {epoch_done}"


class Stop(Exception):
    """Training stops inside an epoch: `why` is 'interrupted' (Ctrl-C, SIGTERM), 'budget' (--max-minutes) or
    'patience' (--patience; `said`: why, out_of_patience's line)."""

    def __init__(self, why, position, said=None):
        self.why, self.position, self.said = why, position, said


def cmd_train(args):
    with contextlib.ExitStack() as held:                              # the run folder, held while training in it
        run_training(args, held)


def run_training(args, held):
    started_at = args.started                                         # the process's start (--max-minutes counts it)
    report = lambda line: print(line, file=sys.stderr)        # noqa: E731 - one line, the user should know
    arrays = manifest = vocab = None
    if args.resume:
        out = Path(args.resume)
        if not (out / "last.npz").exists() and (out / "best.npz").is_file():
            raise CheckpointError(f"--resume {quoted(out)}: it has no last.npz to continue from, only best.npz; start "
                                  f"a new run from its weights with --init-from {quoted(out)} --out NEW")
        if not out.exists():
            raise CheckpointError(f"--resume {quoted(out)}: there is no such folder; give the folder of the run to "
                                  f"continue (what its train --out wrote)")
        if out.is_file():
            its_folder = f" (--resume {quoted(out.parent)})" if out.suffix == ".npz" else ""
            raise CheckpointError(f"--resume {quoted(out)}: a file, not a run's folder; give the folder its train "
                                  f"--out wrote{its_folder}")
        if not (out / "last.npz").exists():
            raise CheckpointError(f"--resume {quoted(out)}: it holds no checkpoint to continue from (a run writes "
                                  f"last.npz at its first epoch's end, or at --save-every-steps); start the run again "
                                  f"with --out {quoted(out)}")
        arrays, manifest = load_run(out / "last.npz")
        config = manifest["config"]
        honours = ", ".join("--" + d.replace("_", "-") for d in RESUME_HONOURS[1:]) + " (where the same text is now)"
        refuse_contradictions(args, set(vars(args)) - set(RESUME_HONOURS) - {"out"}, config, "the checkpoint",
                              f"a resume continues the run as it was (it honours {honours}); to change it, start "
                              f"a new run from its weights with --init-from {quoted(out)}")
        if "out" in args.given and Path(args.out).resolve() != out.resolve():
            raise ConfigError(f"--out {args.out} contradicts --resume {quoted(out)}: a resume writes into the run's "
                              f"folder")
        if args.overwrite:
            raise ConfigError(f"--overwrite contradicts --resume {quoted(out)}: a resume continues the run it finds "
                              f"there")
        if args.epochs:                                               # None unless --epochs was given
            config["epochs"] = args.epochs
        if "engine" in args.given:
            config["engine"] = args.engine
        if "corpus" in args.given:                                    # the same text, where it is now
            if manifest.get("corpus_digest") is None:
                raise ConfigError(f"--corpus: {out}'s checkpoint keeps no digest of its text (it was written before "
                                  f"they were kept), so a resume cannot tell that it is the same text")
            config["corpus"] = corpus_paths(args.corpus)              # (check_resume refuses another text)
        else:
            gone = [p for p in config["corpus"] or () if p != STDIN and not Path(p).exists()]
            if gone:
                raise DataError(f"the run's text {gone[0]} is not there any more; if it has moved, give it where it "
                                f"is now (the same text, checked): scratchrnn train --resume {quoted(out)} --corpus "
                                f"PATH ...")
            if STDIN in (config["corpus"] or ()) and (sys.stdin is None or sys.stdin.isatty()):
                raise stdin_again(out, "a terminal here")
        kept = [key for key in WATCH_KEYS if key in config and key not in args.given]
        config.update({key: getattr(args, key) for key in WATCH_KEYS if key not in kept})   # given, or not kept then
        check_arrays(arrays, config, len(manifest["vocab"]), out / "last.npz")
        if config.get("init_from"):                                   # its vocabulary came with its weights
            vocab = Vocab(idx_to_token=manifest["vocab"], token=config["tokens"])
    elif args.init_from:
        parent = checkpoint_in(args.init_from)
        arrays, parent_manifest = load_run(parent)
        refuse_contradictions(args, set(INHERITED), parent_manifest["config"], f"the run of --init-from {parent}",
                              "a run started from another's weights keeps its shape and its vocabulary")
        config = {**config_from_args(args), **{k: parent_manifest["config"][k] for k in INHERITED
                                               if k in parent_manifest["config"]}}
        config["init_from"] = str(parent.resolve())
        if parent.resolve().parent == Path(args.out).resolve():          # (the default --out, as the run's was)
            if args.overwrite:
                raise ConfigError(f"--overwrite would delete {parent}, the weights --init-from starts from; use "
                                  f"another --out")
            raise ConfigError(f"--out {args.out} holds the run --init-from starts from; give the new run its own "
                              f"--out (--init-from {quoted(args.init_from)} --out NEW)")
        vocab = Vocab(idx_to_token=parent_manifest["vocab"], token=config["tokens"])
        check_arrays(arrays, config, len(vocab), parent)
        out = Path(args.out)
    else:
        config = config_from_args(args)
        out = Path(args.out)
    check_hyperparameters(config["lr"], config["epochs"], config["theta"])
    check_schedule(config)
    if config["validate_every_steps"] and not config["val_fraction"]:
        raise ConfigError("--validate-every-steps measures the validation text, and --val-fraction 0 holds none out")
    if config.get("patience") and not config["val_fraction"]:
        raise ConfigError("--patience watches the validation perplexity, and --val-fraction 0 holds none out")
    created = missing_folders(out)
    out = prepare_out_dir(out)
    held.enter_context(hold_out_dir(out))       # refused here: the folder is another training's, and stays
    remove_unfinished_writes(out, report)
    try:                                        # refused here: nothing of the old run deleted, no new folder left
        replaced = [] if args.resume else check_no_run_in(out, args.overwrite)
        device = resolve_device(args.device)
        note_engine_on_cpu(config["engine"], device)
        grow = arrays is not None and manifest is None                # --init-from: the text's new tokens too
        trained_on = len(vocab) if grow else None
        try:
            vocab, loader, val, model, text_id = build(config, device, vocab, report, grow, manifest)
        except EmptyText as e:                                        # (a script's resume, with nothing piped in)
            if manifest is not None and e.path == STDIN:
                raise stdin_again(out, "empty here") from None
            raise
        if grow:
            config["new_tokens"] = len(vocab) - trained_on            # (its model reads no token as <unk> for it)
        if arrays is None:                                            # a new run: its vocabulary is its choice
            note_large_vocabulary(model, config, vocab, (loader.corpus, val), report)
        note_validation_share(config, 0 if val is None else len(val), loader.batches_per_epoch(), report)
        optimizer = optimizer_from_config(config, model)
        check_resume(manifest, vocab, text_id, out)
    except BaseException:
        remove_empty(created)
        raise
    delete_run(out, replaced)

    epoch, position, history, steps, best = 0, None, [], [], math.inf
    # where the run's last.npz stands (a resume's, at the start), for the lines of a stop and of a file not written
    last_saved = {"at": None}
    resume_command = f"scratchrnn train --resume {quoted(out)}"
    resume_with = f"resume with: {resume_command}"
    if manifest is not None:
        model.load_state_dict(weights_in(arrays))
        loader.rng.bit_generator.state = manifest["loader_rng"]
        epoch, history, steps = manifest["epoch"], manifest["history"], manifest.get("steps", [])
        best = manifest["best_val"] if manifest["best_val"] is not None else math.inf
        position = position_in(arrays, manifest, model)               # None unless stopped inside an epoch
        optimizer.load_state_dict(arrays, manifest.get("optimizer_t", 0))   # moments and step count
        if manifest.get("dropout_rng"):
            model.dropout_rng.bit_generator.state = manifest["dropout_rng"]
        if epoch >= config["epochs"]:
            print(f"{out} already has {epoch} epochs; ask for more with --epochs N")
            return
        last_saved["at"] = place_in_run(epoch, manifest["batch"] if position else 0)
        spent = out_of_patience(history, steps, config.get("patience"), resume_command)
        if spent:                                                     # (it would stop again at its next validation)
            print(f"{out} stopped {last_saved['at']}: {spent}")
            return
        as_started = command_line_flags({key: config[key] for key in kept}, build_parser().subcommands["train"])
        print(f"resuming {out} {last_saved['at']}" + (f"; going on as before with {as_started}" if as_started else ""))
        note_other_sums(manifest, model, config["batch_size"], args.given, out)
    elif arrays is not None:
        model.load_state_dict(with_new_tokens(weights_in(arrays), model.state_dict()))   # --init-from: a new text
        print(f"starting from the weights of {config['init_from']}")
    print(f"{config['layers']}-layer {config['cell'].upper()} ({config['hidden']} hidden, "
          f"{model.num_parameters():,} parameters, {model.engine_name}) on {len(loader.corpus):,} training tokens"
          + (f" and {len(val):,} validation tokens" if val is not None else "")
          + f", vocabulary {len(vocab)}, {device_name(device)}; writing to {out}")

    def checkpoint(path, epoch_done, pos=None, loader_rng=None):
        save_run(path, model, vocab, config, epoch_done, loader_rng or loader.rng.bit_generator.state, history,
                 best, pos, optimizer, text_id, steps, validation_took["s"], writes_took)
        if path.name == "last.npz":
            last_saved["at"] = place_in_run(epoch_done, pos.batch if pos else 0)

    def keep_if_best(val_ppl, pos=None, loader_rng=None):
        """best.npz, when this validation perplexity is the best so far."""
        nonlocal best
        if val_ppl is not None and val_ppl < best:
            best = val_ppl
            began = time.perf_counter()
            checkpoint(out / "best.npz", epoch, pos, loader_rng)
            writes_took["best"] = time.perf_counter() - began

    # the seconds the latest writes took: best.npz, and write_last's files (a --max-minutes stop keeps room for both;
    # kept in the checkpoint, as validation_took, for a resume that stops before it writes)
    writes_took = {"best": 0.0, "last": 0.0, **((manifest or {}).get("writes_s") or {})}

    def write_last(pos=None, loader_rng=None):
        """last.npz, metrics.csv (and steps.csv) and, with --plot, perplexity.png."""
        began = time.perf_counter()
        checkpoint(out / "last.npz", epoch, pos, loader_rng)
        write_metrics(out, history, steps)
        if config["plot"]:
            plot_perplexity(out, history, steps)
        writes_took["last"] = time.perf_counter() - began

    # the last validation's seconds (kept in the checkpoint: a resume's --max-minutes counts it from the start)
    validation_took = {"s": (manifest or {}).get("validation_s") or 0.0}

    def validate():
        """The validation perplexity (None without a validation text); EvaluationInterrupted after a Ctrl-C."""
        if val is None:
            return None
        began = time.perf_counter()
        with np.errstate(all="ignore"):
            ppl = evaluate(model, val, config["batch_size"], config["num_steps"],
                           interrupted=lambda: stop["signal"] is not None)
        validation_took["s"] = time.perf_counter() - began
        if not math.isfinite(ppl) and not overflow_noted["done"]:       # once: every line after says nan
            overflow_noted["done"] = True
            why, relu = overflowed(config, evaluation_rows(len(val), config["batch_size"], config["num_steps"])[1],
                                   "trains")
            note_during(f"note: the validation overflowed: {why}" + ("; a ReLU RNN's state has no bound" if relu
                                                                      else ""))
        return ppl

    overflow_noted = {"done": False}                                 # validate's note, once a run

    def note_during(line):
        """A note on stderr while the run trains (above the progress bar on a terminal)."""
        (tqdm.write if on_terminal else print)(line, file=sys.stderr)

    # signal: the first Ctrl-C or SIGTERM's name; rng_at_start: the data iterator's state at the epoch's start;
    # position: the epoch's latest (an EpochPosition), where an interrupted validation saves the run; epoch: which
    # one runs (1 for the first), for a divergence's line
    # log_lost: the error that met a line of the log (say), after which the run stops saved, as for a signal
    # trained: whether this process has trained a minibatch (a worker lost before one leaves last.npz as it was)
    stop = {"signal": None, "rng_at_start": None, "position": None, "epoch": None, "log_lost": None, "trained": False}

    def leave_interrupted(pos):
        """Ctrl-C, SIGTERM, a log that cannot be written: last.npz at this position inside the epoch (at its last
        minibatch too, when its validation was interrupted: a resume validates it), a line on how to resume, exit
        status 130 (leave_without_log's for a log)."""
        bar.close()
        checkpoint(out / "last.npz", epoch, pos, stop["rng_at_start"])
        if stop["log_lost"]:
            leave_without_log()
        print(f"interrupted ({stop['signal']}): {saved_where()}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)

    def last_kept():
        """Whether the run's last.npz, whose place last_saved says, is there (none saved yet, or its folder gone:
        no)."""
        return last_saved["at"] is not None and (out / "last.npz").exists()

    def saved_where():
        """'saved DIR/last.npz at epoch 2, minibatch 600; resume with: ...', once last.npz is written."""
        return f"saved {out / 'last.npz'} {last_saved['at']}; {resume_with}"

    def leave_without_log():
        """The run's log (standard output) cannot be written: a full disk, a failing device (OutputLost), or its
        reader, `| tee` or `| head`, has gone (BrokenPipeError). Each ended the run where it stood, its epoch's
        minibatches lost (with --save-every N, N epochs); now it stops saved, as a Ctrl-C does, and says so on stderr
        where it can: exit status EXIT_ERROR, or EXIT_PIPE_CLOSED for a closed pipe."""
        leave_stdout()
        closed = isinstance(stop["log_lost"], BrokenPipeError)
        tell(f"error: cannot write the run's log to standard output "
             f"({'its reader has closed the pipe' if closed else stop['log_lost'].why}): {saved_where()}")
        sys.exit(EXIT_PIPE_CLOSED if closed else EXIT_ERROR)
    budget = None if args.max_minutes is None else args.max_minutes * 60
    if budget is not None and config["plot"]:
        pyplot()                                # its import (half a second) before the budget's first check, not in a
        #                                         stop's closing writes, which the first epoch has not yet measured

    def closing_validation_s():
        """What a --max-minutes stop's closing validation should take: as long as the run's last one (kept in its
        checkpoint), or before it has done one, as the training's speed says (note_speed)."""
        if val is None:
            return 0.0
        return validation_took["s"] or expected_validation_s(len(val), pace["tokens_per_s"])

    # the training's tokens/s over its latest SPEED_WINDOW_S, from a mark at an epoch's first minibatch on: the
    # epoch's own figure counts the first minibatch's warm-up (a 56 MiB text's 11th minibatch: 13,500 tokens/s, not
    # 23,000, and a 3-minute budget's closing validation expected at 175 s instead of 100)
    pace = {"mark": None, "tokens_per_s": None}

    def note_speed(pos):
        """After each minibatch (pos: the epoch's so far): the tokens/s since the mark, once SPEED_WINDOW_S old."""
        mark = pace["mark"]
        if mark is not None and pos.seconds - mark[1] >= SPEED_WINDOW_S and pos.tokens > mark[0]:
            pace["tokens_per_s"] = (pos.tokens - mark[0]) / (pos.seconds - mark[1])
        if mark is None or pos.seconds < mark[1] or pos.seconds - mark[1] >= SPEED_WINDOW_S:   # (a new epoch, too)
            pace["mark"] = (pos.tokens, pos.seconds)

    def closing_fits():
        """Whether the closing validation fits in the budget at all: where it does not, the stop leaves it out, and
        the budget keeps no room for it (a series of resumes would each train a minibatch and validate)."""
        return closing_validation_s() < budget

    def room_for_closing():
        """The seconds the budget keeps for its close: the closing validation (where it fits) and the best.npz it may
        write, then last.npz, the metrics and the plot, each as long as its latest (none yet: not counted)."""
        validating = closing_validation_s() + writes_took["best"] if val is not None and closing_fits() else 0.0
        return validating + writes_took["last"]

    def budget_stopped(left_out=""):
        """The line of a --max-minutes stop, once last.npz is written."""
        return (f"stopped: the --max-minutes {args.max_minutes:g} budget is spent, {last_saved['at']}{left_out}; "
                f"{resume_with}")

    def minibatch_s():
        """A minibatch's seconds at the training's speed (note_speed's; none measured yet: 0)."""
        speed = pace["tokens_per_s"]
        return config["batch_size"] * config["num_steps"] / speed if speed else 0.0

    def budget_spent(writing_s=0.0):
        """--max-minutes: whether the run, were it to go on from here (a minibatch's end; an epoch's, where the
        validation just done closes the run, and where going on writes the epoch's files first: writing_s) for one
        more minibatch, would end its closing validation and writes past the budget, counted from the process's
        start."""
        return (budget is not None
                and time.perf_counter() - started_at + writing_s + minibatch_s() + room_for_closing() > budget)

    # SIGHUP (none on Windows), unless the run was started to ignore it (nohup), which it goes on doing
    hangup = getattr(signal, "SIGHUP", None)
    hangup = None if hangup is None or signal.getsignal(hangup) == signal.SIG_IGN else hangup
    on_terminals = terminal_fds()

    def on_signal(signum, frame):
        """Ctrl-C, SIGTERM, SIGHUP: stop at the next minibatch's end and save there (a hung-up terminal, an ssh
        connection that dropped, ended the run where it stood, its epoch lost)."""
        if signum == hangup:
            leave_hung_up_terminal(on_terminals)                      # what is still written goes nowhere
        if stop["signal"]:                                            # a second one: leave now
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(signum).name

    def so_far(pos):
        """The epoch so far: its running training perplexity and tokens/s (reading the loss waits for a GPU)."""
        return perplexity(float(pos.loss_sum) / pos.tokens), pos.tokens / max(pos.seconds, 1e-9)

    def note_step(pos, **measured):
        """A row of steps.csv for this minibatch (one row where --log-every-steps and --validate-every-steps meet)."""
        if not (steps and (steps[-1]["epoch"], steps[-1]["minibatch"]) == (epoch + 1, pos.batch)):
            steps.append(dict(epoch=epoch + 1, minibatch=pos.batch, minibatches=batches, train_perplexity=None,
                              val_perplexity=None))
        steps[-1].update({k: round(v, 6) for k, v in measured.items()})

    validated = {"at": None, "val": None}                            # the last validate_inside: (epoch, minibatch)
    saving_noted = {"done": False}                                   # note_saving_share's, once a run

    def validate_inside(pos):
        """--validate-every-steps at this minibatch: a line, a row of steps.csv, best.npz when the best so far; then
        the run's stop (saved here) where --patience is spent."""
        was = best
        try:
            val_now = validate()
        except EvaluationInterrupted:
            raise Stop("interrupted", pos) from None
        validated.update(at=(epoch, pos.batch), val=val_now)
        note_step(pos, val_perplexity=val_now)
        keep_if_best(val_now, pos, stop["rng_at_start"])
        shown["val"] = f"{val_now:.2f}"
        say(f"epoch {epoch + 1:4d}  minibatch {pos.batch:,}/{batches:,}  validation perplexity {val_now:7.2f}  "
            f"({validation_took['s']:.1f} s)" + (f"  best so far: {out / 'best.npz'}" if val_now < was else ""))
        spent = out_of_patience(history, steps, config.get("patience"), resume_command)
        if spent:
            raise Stop("patience", pos, spent)

    def due(key, pos):
        """Whether an every-N-minibatches flag (config[key]: N, 0 or None off) falls on this minibatch."""
        n = config[key]
        return bool(n) and pos.batch % n == 0

    def validation_cut(pos):
        """Whether the run stopped at this minibatch without the validation due there (a Ctrl-C during it, or during
        the minibatch): a resume there does it first."""
        return due("validate_every_steps", pos) and pos.batch < batches and not any(
            (s["epoch"], s["minibatch"]) == (epoch + 1, pos.batch) and s["val_perplexity"] is not None for s in steps)

    def on_step(pos, grad_norm):
        """After each minibatch: the progress bar, --log-every-steps, --validate-every-steps, then a Ctrl-C's stop,
        --save-every-steps and the --max-minutes budget, so that a checkpoint here keeps this minibatch's rows."""
        stop["position"], stop["trained"] = pos, True
        note_speed(pos)
        bar.update(1)
        log_due, validation_due, save_due = (due(key, pos) for key in (
            "log_every_steps", "validate_every_steps", "save_every_steps"))
        log_due = log_due or time.perf_counter() - said["at"] > QUIET_AT_MOST_S     # a log never falls silent
        if log_due or validation_due or save_due or time.perf_counter() - loss_read["at"] > 10:
            # A run that diverged inside a long epoch stops here, not at the epoch's end (38 minutes on a 56 MiB
            # text), and never writes its NaN weights over the last good checkpoint (reading the loss waits for a GPU:
            # at most every 10 s where nothing else reads it)
            loss_read["at"] = time.perf_counter()
            check_converging(float(pos.loss_sum) / pos.tokens, f" at minibatch {pos.batch:,}")
        if on_terminal and time.perf_counter() - shown["at"] > 1.0:          # at most once a second
            shown["at"] = time.perf_counter()
            running, rate_so_far = so_far(pos)
            bar.set_postfix(epoch=f"{epoch + 1}/{config['epochs']}", train_ppl=f"{running:.2f}",
                            val_ppl=shown["val"], tokens_per_s=f"{rate_so_far:,.0f}")
        if log_due:
            running, rate_so_far = so_far(pos)
            note_step(pos, train_perplexity=running)
            say(f"epoch {epoch + 1:4d}  minibatch {pos.batch:,}/{batches:,}  train perplexity {running:7.2f}  "
                f"lr {rate(pos.batch - 1):.4g}  {rate_so_far:,.0f} tokens/s")
        if validation_due and pos.batch < batches and not stopping():  # (the epoch's last: its own line)
            validate_inside(pos)
        if stopping():
            raise Stop("interrupted", pos)
        if save_due:
            began = time.perf_counter()
            checkpoint(out / "last.npz", epoch, pos, stop["rng_at_start"])
            wrote = time.perf_counter() - began
            writes_took["last"] = writes_took["last"] or wrote            # a first estimate of write_last's, before one
            if not saving_noted["done"] and minibatch_s():               # once, when the training's speed is known
                saving_noted["done"] = True
                note_saving_share(config["save_every_steps"], wrote, minibatch_s(), batches,
                                  note_during)
        # the budget: stop where the closing validation would end past it (where this minibatch's own was just
        # done, it is the closing one, and the run ends now, inside the budget)
        if budget_spent():
            raise Stop("budget", pos)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, hangup) if sig}
    on_terminal = sys.stderr.isatty()
    said = {"at": time.perf_counter()}                               # when the log's last line was written

    def say(line):
        """A line of the run's log: above the bar on a terminal. One that cannot be written stops the run (saved) at
        the minibatch's or the epoch's end, as a Ctrl-C does."""
        said["at"] = time.perf_counter()
        if stop["log_lost"]:
            return
        try:
            (tqdm.write if on_terminal else print)(line)
        except (OutputLost, BrokenPipeError) as e:
            stop["log_lost"] = e

    def stopping():
        """Whether a signal, or a log that cannot be written, asks the run to stop at this minibatch's end."""
        return stop["signal"] is not None or stop["log_lost"] is not None
    batches = loader.batches_per_epoch()
    # On a terminal the bar counts minibatches (an epoch of a long text can take many minutes; a bar in epochs
    # would stand still through it); its perplexity is the epoch's so far.
    bar = tqdm(total=config["epochs"] * batches, initial=epoch * batches + (position.batch if position else 0),
               desc="training", unit="minibatch", disable=not on_terminal)
    shown = {"at": 0.0, "val": "-"}
    loss_read = {"at": time.perf_counter()}                          # when on_step last checked the loss
    ppl = speed = val_ppl = None
    epoch_at_start = epoch                                           # the first epoch this call ends has its line
    try:
        while epoch < config["epochs"]:
            stop["epoch"] = epoch + 1                                 # (as the log lines count them)
            stop["rng_at_start"] = copy.deepcopy(loader.rng.bit_generator.state)
            stop["position"] = position
            started = time.perf_counter()
            try:
                if position is not None and validation_cut(position):
                    validate_inside(position)
                    if stopping():
                        raise Stop("interrupted", position)
                rate = rate_of(config, epoch, loader.batches_per_epoch())
                ppl, speed = train_epoch(model, loader, rate, config["theta"], config["random_iter"],
                                         on_step=on_step, resume=position, optimizer=optimizer)
            except Stop as e:
                bar.close()
                if e.why == "interrupted":
                    leave_interrupted(e.position)
                # the budget, --patience: end as any run ends, validated (a validation just done at this minibatch
                # gives its value: always so for --patience), unless one takes longer than the whole budget
                left_out = ""
                try:
                    if validated["at"] == (epoch, e.position.batch):
                        val_ppl = validated["val"]
                    elif not closing_fits():
                        val_ppl, left_out = None, (f" (without its closing validation: one takes about "
                                                   f"{closing_validation_s():.3g} s, longer than the "
                                                   f"budget)")
                    else:
                        val_ppl = validate()
                except EvaluationInterrupted:
                    leave_interrupted(e.position)
                keep_if_best(val_ppl, e.position, stop["rng_at_start"])
                write_last(e.position, stop["rng_at_start"])
                ppl = perplexity(float(e.position.loss_sum) / max(1, e.position.tokens))
                speed = e.position.tokens / max(e.position.seconds, 1e-9)
                print(budget_stopped(left_out) if e.why == "budget" else f"stopped: {e.said}")
                break
            try:
                val_ppl = validate()
            except EvaluationInterrupted:                             # the epoch is trained, not yet validated:
                leave_interrupted(stop["position"])                   # saved at its last minibatch
            position = None
            epoch += 1
            lr_now = rate(loader.batches_per_epoch() - 1)
            history.append(dict(epoch=epoch, train_perplexity=round(ppl, 6),
                                val_perplexity=None if val_ppl is None else round(val_ppl, 6),
                                tokens_per_s=round(speed, 1), lr=lr_now,
                                elapsed_s=round((history[-1]["elapsed_s"] if history else 0.0)
                                                + time.perf_counter() - started, 3)))
            keep_if_best(val_ppl)
            # --patience: the validations since the best are as many; the run ends here, saved
            patience_spent = (out_of_patience(history, steps, config.get("patience"), resume_command)
                              if epoch < config["epochs"] else None)
            patience_stop = patience_spent is not None
            # the budget, at an epoch's end: its validation, just done, closes the run where another would not fit
            due_anyway = epoch % config["save_every"] == 0 or epoch == config["epochs"] or patience_stop
            budget_stop = (not patience_stop and epoch < config["epochs"]
                           and budget_spent(writes_took["last"] if due_anyway else 0.0))
            saved = due_anyway or budget_stop
            if saved:
                write_last()
            bar.n = epoch * batches                                   # (the random offset can take one away)
            shown["val"] = "-" if val_ppl is None else f"{val_ppl:.2f}"
            bar.set_postfix(epoch=f"{epoch}/{config['epochs']}", train_ppl=f"{ppl:.2f}", val_ppl=shown["val"],
                            tokens_per_s=f"{speed:,.0f}")
            if (epoch % config["log_every"] == 0 or epoch == config["epochs"] or epoch == epoch_at_start + 1
                    or budget_stop or patience_stop):
                say(f"epoch {epoch:4d}  train perplexity {ppl:7.2f}  "
                    + ("" if val_ppl is None else f"validation perplexity {val_ppl:7.2f}  ")
                    + f"lr {lr_now:.4g}  {speed:,.0f} tokens/s")
                if config["sample"]:
                    say(f"  sample: {sample_text(model, vocab, config['sample'], (config['seed'], epoch))}")
            if stop["log_lost"]:
                bar.close()
                if not saved:
                    write_last()
                leave_without_log()
            if budget_stop:
                bar.close()
                print(budget_stopped())
                break
            if patience_stop:
                bar.close()
                print(f"stopped: {patience_spent}")
                break
    except TrainingDiverged as e:       # in the epoch, or weights found NaN writing a checkpoint (a Ctrl-C's, ...)
        bar.close()
        kept = f"the last good checkpoint {out / 'last.npz'} is kept" if last_kept() \
            else "no checkpoint had been written yet"
        print(f"error: {e} (epoch {stop['epoch']}); {kept}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except KeyboardInterrupt:           # a second Ctrl-C (on_signal): leave now, without saving; say what is kept
        bar.close()
        kept = (f"the run's last.npz ({last_saved['at']}) is kept; {resume_with}"
                if last_kept() else "no checkpoint had been written")
        print(f"interrupted again ({stop['signal']}): left without saving; {kept}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except WorkerError as e:            # fast-split's worker gone (killed, out of memory): saved at the last minibatch
        bar.close()                     # done (the failed one changed no weight and drew no mask), as a Ctrl-C's
        if stop["trained"]:
            write_last(stop["position"], stop["rng_at_start"])
        if not last_kept():                               # nothing trained, nothing saved before (or its folder gone)
            raise
        raise WorkerError(f"{e}: {'saved' if stop['trained'] else 'kept'} {out / 'last.npz'} {last_saved['at']}; "
                          f"{resume_with} (--engine fast trains without a worker)") from None
    except CheckpointError as e:        # a file of the run that cannot be written (a full disk): how the run goes on
        bar.close()
        if not last_kept():
            raise
        raise CheckpointError(f"{e}; the run's last.npz ({last_saved['at']}) is kept: once the file can be written, "
                              f"{resume_with}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        bar.close()
    print(f"perplexity {ppl:.1f}" + ("" if val_ppl is None else f" (validation {val_ppl:.1f}, best {best:.1f})")
          + f", {speed:.1f} tokens/sec on {device_name(device)}")
    best_kept = (out / "best.npz").exists()                         # (none where no validation was done yet)
    print(f"checkpoints: {out / 'last.npz'}" + (f", {out / 'best.npz'} (best validation)" if best_kept else "")
          + f"; metrics: {out / 'metrics.csv'}" + (f"; plot: {out / 'perplexity.png'}" if config["plot"] else ""))
    overfitting = overfitting_note(history)
    if overfitting:
        print(overfitting, file=sys.stderr)


# A run's end says so where its validation has turned: the epoch of its best validation this many epochs back or
# more, the last validation this much above it, and the training text's perplexity lower than then
OVERFIT_EPOCHS, OVERFIT_RISE = 5, 1.02


def out_of_patience(history, steps, patience, resume_command):
    """Why a run stops at its last validation with --patience N: N validations or more since its best (the first of
    equal ones), counting each epoch's closing one (history's rows) and those inside the epochs (--validate-every-
    steps: steps' rows); None where not, or without --patience."""
    if not patience:
        return None
    inside = [(row["epoch"], row["minibatch"], row["val_perplexity"]) for row in steps
              if row["val_perplexity"] is not None]
    closing = [(row["epoch"], math.inf, row["val_perplexity"]) for row in history if row["val_perplexity"] is not None]
    validations = sorted(inside + closing, key=lambda v: v[:2])                     # in the order they were done
    if not validations:
        return None
    at = min(range(len(validations)), key=lambda i: validations[i][2])
    since = len(validations) - 1 - at
    if since < patience:
        return None
    epoch, batch, val = validations[at]
    where = f"epoch {epoch}" if batch == math.inf else f"epoch {epoch}, minibatch {batch:,}"
    return (f"the validation perplexity has not bettered its best, {val:.2f} at {where}, in the {since} "
            f"validation{'s' * (since != 1)} since (--patience {patience}); best.npz keeps the weights of the best "
            f"validation; to train on: {resume_command} --patience 0")


def overfitting_note(history):
    """One line where the epochs' rows show overfitting: the validation perplexity risen well above its best, epochs
    after it, while the training text's fell (the model learns its text by heart, and what it learns there no longer
    carries to text it has not read); None where they do not."""
    rows = [row for row in history if row["val_perplexity"] is not None]
    if not rows:
        return None
    best, last = min(rows, key=lambda row: row["val_perplexity"]), rows[-1]         # (the first of equal bests)
    if (last["epoch"] - best["epoch"] < OVERFIT_EPOCHS or last["val_perplexity"] < OVERFIT_RISE * best["val_perplexity"]
            or last["train_perplexity"] >= best["train_perplexity"]):
        return None
    return (f"note: the validation perplexity rose from {best['val_perplexity']:.2f} (epoch {best['epoch']}) to "
            f"{last['val_perplexity']:.2f} (epoch {last['epoch']}) while the training text's fell from "
            f"{best['train_perplexity']:.2f} to {last['train_perplexity']:.2f}: the model is overfitting its text; "
            f"best.npz keeps the weights of the best validation, which generate and evaluate read, and more --dropout, "
            f"a smaller --hidden or more text hold it off")


# ----------------------------------------------------------------------------------------------
# generate, evaluate, gradcheck
# ----------------------------------------------------------------------------------------------

def run_from(args, to):
    """generate's and evaluate's --from and --checkpoint: -> (checkpoint path, model, vocabulary, manifest). `to`
    says what the run is wanted for, in the line of a missing one."""
    if "from_dir" not in args.given and not Path(args.from_dir).exists():
        raise ConfigError(f"there is no run in {args.from_dir} (where train writes without --out); give --from DIR, "
                          f"the folder of the run to {to}")
    given = Path(args.from_dir)
    if "checkpoint" in args.given and given.is_file() and given.name != f"{args.checkpoint}.npz":
        raise ConfigError(f"--checkpoint {args.checkpoint} chooses among a run folder's checkpoints, and --from names "
                          f"one file, {args.from_dir}: give its folder (--from {quoted(given.parent)} --checkpoint "
                          f"{args.checkpoint}) or leave --checkpoint out")
    path = checkpoint_in(args.from_dir, args.checkpoint)
    arrays, manifest = load_run(path)
    model, vocab = model_from_checkpoint(arrays, manifest, resolve_device(args.device), path)
    return path, model, vocab, manifest


def saw_unk(config):
    """Whether a run's model was shown <unk>: a run that read tokens of its text as <unk> (--min-freq; --init-from
    before its vocabulary grew by the text's new tokens, config new_tokens). Any other run's model never was."""
    return config.get("min_freq", IMPLIED["min_freq"]) > 1 or (bool(config.get("init_from"))
                                                               and "new_tokens" not in config)


def prefix_left_empty(prefix, read, charset, sep):
    """The line for a --prefix that leaves no token to warm up on: a word model's prefix of blanks alone (its words
    are what blanks part), or one that the run's --charset reads as nothing (book: letters alone)."""
    what = "characters" if sep == "" else "words"
    if sep == "" or normalize(prefix).strip():                            # the charset took them
        how = f"once read as the run's text was (--charset {charset}: {read!r})"
    else:
        how = "(a word model's words are what spaces and line breaks part)"
    return f"the prefix {prefix!r} has no {what} {how}: give one with {what} of the run's text, or no --prefix"


def cmd_generate(args):
    """The prefix, then each token as it is produced (a long generation shows progress at once). Without
    a prefix, --length tokens from a first one drawn uniformly from the vocabulary."""
    _, model, vocab, manifest = run_from(args, "generate from")
    config = manifest["config"]
    prefix = args.prefix if args.prefix else None                       # "" too: as with no --prefix
    if prefix is not None:                                              # the model read its text so, and only so
        read = read_as_text(prefix, config["charset"], vocab.sep)
        if not (read.split() if vocab.sep else read):                   # a prefix all blanks, or all dropped
            raise ConfigError(prefix_left_empty(prefix, read, config["charset"], vocab.sep))
        if read != normalize(prefix):
            print(f"note: the prefix is read as the run's text was (--charset {config['charset']}): {read!r}",
                  file=sys.stderr)
        prefix = read
    # A prefix's tokens outside the vocabulary are read as <unk> (with a note) by a model that was shown <unk>; any
    # other refuses them.
    tokens = generate(prefix, args.length, model, vocab, temperature=args.temperature, seed=args.seed,
                      top_k=args.top_k, unk_trained=saw_unk(config),      # checked here: nothing printed if wrong
                      report=lambda line: print(line, file=sys.stderr))
    sep = ""
    if prefix is not None:
        print(prefix, end="", flush=True)
        sep = vocab.sep
    try:
        for token in tokens:
            print(sep + token, end="", flush=True)
            sep = vocab.sep
    except (KeyboardInterrupt, ScratchRNNError):      # the text's line ends before the one that says why it stopped
        print()                                       # ("I took ainterrupted")
        raise
    print()


def note_trained_on(paths, files, corpus, manifest, report):
    """A text given to evaluate that the run trained on (one of its --corpus files, the same bytes; or the same tokens
    as its whole text, as for the shipped book, which has no file digest): one line saying that its perplexity there
    is not a held-out one. `files`: {path: file_digest} of the text's `paths` read to their end; the manifest keeps
    its run's. A file read in part (--max-tokens) is read through for its digest where its size is a trained file's."""
    trained = {digest: name for name, digest in (manifest.get("corpus_files") or {}).items()}
    sizes = {digest.split(":")[0] for digest in trained}
    for given in map(Path, paths):
        if str(given) != STDIN and str(given) not in files and str(given.stat().st_size) in sizes:
            files[str(given)] = file_digest_of(given)
    same = [(path, trained[digest]) for path, digest in files.items() if digest in trained]
    then = manifest.get("corpus_digest")                              # 'N:hex': N tokens first, the hash if equal
    if same:
        given, theirs = same[0]
        if given == theirs:
            what = f"{given} is the run's own --corpus"
        elif theirs == STDIN:
            what = f"{given} holds the same bytes as the text the run read on standard input"
        else:
            what = f"{given} holds the same bytes as {theirs}, the run's --corpus"
    elif then and then.split(":")[0] == str(len(corpus)) and corpus_digest(corpus) == then:
        what = f"{', '.join(files) or 'the text'} is the run's training text, token for token"
    else:
        return
    tail = manifest["config"].get("val_fraction") or 0
    held = f"; it held out the last {tail:.0%} of its text for validation" if tail else ""
    report(f"note: {what}, which the run trained on: a perplexity on it is not a held-out one{held}")


def cmd_evaluate(args):
    """The perplexity of a trained model on a text (a test set, another book by the same author): the text read as
    the run's was (its tokens and --charset) onto its vocabulary, and scored as the run's validation text is, in its
    rows of chunks (train.evaluate), but to each row's last token; with --max-tokens N, its first N tokens only. Tokens
    the vocabulary lacks are read as <unk>, with a note."""
    max_tokens = max_tokens_of(args)
    if max_tokens == 1:
        raise ConfigError("--max-tokens 1 leaves one token, and a perplexity needs 2 at least (one to predict the "
                          "next)")
    path, model, vocab, manifest = run_from(args, "evaluate")
    config = manifest["config"]
    report = lambda line: print(line, file=sys.stderr)                # noqa: E731
    files, notes = {}, []                                             # {path: file_digest}, as a run keeps them
    paths = corpus_paths(args.corpus)
    corpus, _ = load_corpus(paths, max_tokens=max_tokens, token=config["tokens"], charset=config["charset"],
                            vocab=vocab, report=notes.append, progress=report, digests=files, scoring=True)
    names = ", ".join("standard input" if given == STDIN else given for given in args.corpus)
    if len(corpus) < 2:                                               # the one line (the text's notes unsaid)
        raise DataError(f"corpus {names} has 1 token, and a perplexity needs 2 at least (one to predict the next)")
    for line in notes:
        report(line)
    note_trained_on(paths, files, corpus, manifest, report)
    if not saw_unk(config) and np.any(corpus == vocab.unk):
        report("note: this run's model was never shown <unk> (its text had none), so each <unk> costs it dearly")
    rows, length, scored = evaluation_rows(len(corpus), config["batch_size"], config["num_steps"], whole=True)
    unit = "character" if config["tokens"] == "char" else "word"
    stop = {"signal": None}                                           # the first Ctrl-C or SIGTERM's name

    def on_signal(signum, frame):
        """Ctrl-C, SIGTERM: stop at the next chunk, with the perplexity so far; a second one leaves at once."""
        if stop["signal"]:
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(signum).name
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.perf_counter()
    try:
        with tqdm(total=scored, desc="scoring", unit="token", unit_scale=True,
                  disable=not sys.stderr.isatty()) as bar, np.errstate(all="ignore"):   # an overflow: the line below
            ppl = evaluate(model, corpus, config["batch_size"], config["num_steps"], whole=True, progress=bar.update,
                           interrupted=lambda: stop["signal"] is not None)
    except EvaluationInterrupted as e:
        # a long text's scoring (a 100 MB one: half an hour) gives what it has: every row's first tokens, scored
        so_far = "" if e.so_far is None or not math.isfinite(e.so_far) else (
            f": perplexity {e.so_far:.2f} ({math.log2(e.so_far):.3f} bits a {unit}) on the {e.scored:,} tokens scored "
            f"so far, {100 * e.scored / scored:.3g}% of the {scored:,} (the first {e.scored // rows:,} of each of the "
            f"{rows:,} rows the text is read in)")
        print(f"interrupted ({stop['signal']}){so_far}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not math.isfinite(ppl):
        # a state that grows without bound (a ReLU RNN's, trained on short chunks from a zero state) over a row far
        # longer than any chunk it trained on: float overflowed, and NumPy's warnings were all there was to read
        why, relu = overflowed(config, length, "trained")
        raise DataError(f"scoring {names} overflowed: {why}" + ("; a ReLU RNN's state has no bound, a run with "
                                                                 "--nonlinearity tanh (or a GRU or an LSTM) keeps it "
                                                                 "bounded" if relu else ""))
    first = "first " if len(corpus) == max_tokens else ""                 # (--max-tokens cut the text there)
    print(f"perplexity {ppl:.2f} on {names} ({math.log2(ppl):.3f} bits a {unit}; {scored:,} of its {first}"
          f"{len(corpus):,} tokens scored, {time.perf_counter() - started:.1f} s) by {path}, "
          f"{place_in_run(manifest['epoch'], manifest['batch'])}")


def cmd_gradcheck(args):
    from .gradcheck import check_model
    results = check_model(args.cell, args.layers, args.nonlinearity, args.random_iter, engine=args.engine,
                          vocab_size=args.vocab, num_hiddens=args.hidden, batch_size=args.batch_size,
                          num_steps=args.num_steps, seed=args.seed, dropout=args.dropout)
    names = list(next(iter(results.values())))
    print(f"finite differences (float64, central, eps 1e-4) vs hand-written backward: {args.layers}-layer "
          f"{args.cell}{' (' + args.nonlinearity + ')' if len(CELLS[args.cell].NONLINEARITIES) > 1 else ''}, "
          f"{'random' if args.random_iter else 'sequential'} iteration, {args.engine} engine")
    print(f"{'parameter':<12}" + "".join(f"{chunk:>12}" for chunk in results))
    worst = 0.0
    for name in names:
        errs = [results[chunk][name] for chunk in results]
        worst = max(worst, *errs)
        print(f"{name:<12}" + "".join(f"{e:12.1e}" for e in errs))
    ok = worst < 1e-6
    print(f"worst relative error {worst:.1e}: {'pass' if ok else 'FAIL'} (limit 1e-6)")
    if not ok:
        sys.exit(1)


def cmd_selftest(args):
    from . import selftest
    selftest.main(["--device", args.device])


# ----------------------------------------------------------------------------------------------
# the parser
# ----------------------------------------------------------------------------------------------

def add_run_arguments(p):
    """The run a command reads (generate, evaluate): --from and --checkpoint (run_from)."""
    p.add_argument("--from", dest="from_dir", type=user_path, default=DEFAULT_RUN, metavar="DIR",
                   help="a run folder (or a checkpoint .npz file); the default is where train writes without --out")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="best validation checkpoint (when there is one) or the last one")


def build_parser():
    p = OneLineParser(prog="scratchrnn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"scratchrnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    defaults = DefaultsHelpFormatter

    t = sub.add_parser("train", help="train a language model on text files", formatter_class=defaults,
                       description="Train a character (or word) language model with truncated BPTT.")
    # The book's deep LSTM on the whole text, trained with the recipe of README's sweep (AdamW at its LR, dropout
    # 0.4); lr 2 is SGD's, the book's. epochs None tells a resume whether --epochs was given (a new run takes
    # TRAIN_DEFAULTS').
    add_training_arguments(t, dict(lr=2.0, epochs=None, max_tokens=-1, optimizer="adamw", dropout=0.4))
    t.add_argument("--tokens", choices=TOKENS, default="char", help="character or word tokens")
    t.add_argument("--min-freq", type=positive_int, default=1, metavar="N",
                   help="tokens seen fewer than N times in the text are read as <unk> (the book's Vocab(min_freq)): "
                        "for --tokens word, whose rare words would each take a row of the output layer; 1 keeps "
                        "every token")
    t.add_argument("--charset", choices=CHARSETS, default="raw",
                   help="raw: every character as written (Unicode NFC, line breaks kept); book: letters only, "
                        "lower case (the book's preprocessing); wide: every printable character, blanks collapsed")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="the tail of the corpus held out to measure validation perplexity (0: none)")
    t.add_argument("--out", type=user_path, default=DEFAULT_RUN, help="folder for checkpoints, metrics and plots")
    t.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out that holds a run: its checkpoints, metrics and plot are deleted "
                        "first (without it, such an --out is refused)")
    t.add_argument("--resume", type=user_path, metavar="DIR", default=None,
                   help="continue the run saved in DIR exactly, saving, logging, validating and sampling as it was "
                        "started; it honours --epochs (to raise the total), --device, --engine, --threads, "
                        "--save-every(-steps), --log-every(-steps), --validate-every-steps, --sample, --(no-)plot, "
                        "--patience, --max-minutes, --corpus (where the run's text is now, if it has moved: the same "
                        "text, checked) and refuses any other flag that contradicts the run")
    t.add_argument("--init-from", type=user_path, metavar="RUN", default=None,
                   help="start from the weights and vocabulary of RUN (a run folder or checkpoint) and train on "
                        "--corpus; its shape flags come from RUN; characters (words) RUN never saw are added to its "
                        "vocabulary, with fresh weights")
    t.add_argument("--save-every", type=positive_int, default=1, help="write last.npz every N epochs")
    t.add_argument("--save-every-steps", type=every_or_off, default=None, metavar="N",
                   help="also write last.npz every N minibatches (for texts whose epoch is long; 0: off)")
    t.add_argument("--max-minutes", type=positive_float, default=None, metavar="M",
                   help="stop within M minutes of the command's start: at the end of the minibatch after which "
                        "another minibatch, the closing validation (as long as the last one, or as the training's "
                        "speed says before one) and the closing writes (as long as the last) would end past them; "
                        "validation (left out where it takes longer than M), checkpoint and plot as at the end "
                        "of a run; resumable")
    t.add_argument("--log-every", type=positive_int, default=10,
                   help="print a line every N epochs, and after the first and the last (a line inside the epoch "
                        "where none came for 10 minutes)")
    t.add_argument("--log-every-steps", type=every_or_off, default=None, metavar="N",
                   help="also print a line every N minibatches: the epoch's training perplexity so far (for texts "
                        "whose epoch is long; 0: off)")
    t.add_argument("--validate-every-steps", type=every_or_off, default=None, metavar="N",
                   help="also measure the validation perplexity every N minibatches: a line, and best.npz when it is "
                        "the best so far, as char-rnn's -eval_val_every (for texts whose epoch is long; 0: off); a "
                        f"pass over the validation text runs at about {VALIDATION_SPEEDUP:g} times the training's "
                        "tokens/s")
    t.add_argument("--sample", type=every_or_off, default=None, metavar="N",
                   help="with each epoch's log line, N tokens the model generates (temperature 1, no prefix; line "
                        "breaks shown as \\n), as char-rnn users watch a model learn (0: none)")
    t.add_argument("--plot", action=argparse.BooleanOptionalAction, default=False,
                   help="draw perplexity.png (train and validation)")
    t.add_argument("--patience", type=every_or_off, default=None, metavar="N",
                   help="stop once N validations (each epoch's closing one, and --validate-every-steps's) have not "
                        "bettered the best validation perplexity (best.npz keeps its weights): the model has begun to "
                        "overfit its text (0: never)")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="continue a prefix with a trained model", formatter_class=defaults)
    add_run_arguments(g)
    g.add_argument("--prefix", default=None,
                   help="text to warm up on, read as the run's text was (its --charset; then any characters of its "
                        "vocabulary); none: the first token is drawn uniformly from the vocabulary (with --seed), as "
                        "char-rnn does")
    g.add_argument("--length", type=positive_int, default=100, help="tokens to generate")
    g.add_argument("--temperature", type=float, default=0.0, help="0: greedy; > 0: sample from softmax(logits/T)")
    g.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help="sample only among the K most likely tokens (with --temperature > 0)")
    g.add_argument("--seed", type=seed_int, default=None,
                   help="seed for sampling (none: another sample at every call)")
    g.add_argument("--device", choices=DEVICES, default="cpu", help="where to run the model")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="the perplexity of a trained model on a text", formatter_class=defaults,
                       description="The perplexity of a trained model on a text (a test set, another book): the text\n"
                                   "read as the run's was (its tokens and --charset) onto its vocabulary, and scored\n"
                                   "as the run's validation text is, but to its last token.")
    add_run_arguments(e)
    e.add_argument("--corpus", action=CorpusPaths, nargs="+", type=user_path, required=True, metavar="PATH",
                   help="the text file(s) to score, read in turn as one text; - reads standard input")
    e.add_argument("--max-tokens", type=int, default=-1, metavar="N",
                   help="score the first N tokens of the text only, reading no more of it than they need (a quick "
                        "look at a long one); -1: all of it")
    e.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to run the model; auto picks the GPU when CuPy finds one")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("gradcheck", help="finite differences against the hand-written backward",
                       formatter_class=defaults)
    add_model_arguments(c, dict(hidden=5))
    c.add_argument("--random-iter", action="store_true",
                   help="check the chunks of random sampling (each from a zero state) instead of sequential ones")
    c.add_argument("--engine", choices=ENGINES, default="reference", help="the engine whose backward is checked")
    c.add_argument("--vocab", type=positive_int, default=7, help="size of the random data's vocabulary")
    c.add_argument("--batch-size", type=positive_int, default=3, help="sequences in a chunk")
    c.add_argument("--num-steps", type=positive_int, default=4, help="time steps in a chunk")
    c.add_argument("--seed", type=seed_int, default=0, help="seeds the weights and the data")
    c.add_argument("--dropout", type=float, default=0.0, metavar="P", help="check with dropout masks held fixed")
    c.set_defaults(func=cmd_gradcheck)

    d = sub.add_parser("diagnose", help="picture vanishing and exploding gradients (RNN vs GRU vs LSTM)",
                       formatter_class=defaults, description=diagnose.__doc__)
    diagnose.add_arguments(d)
    d.set_defaults(func=diagnose.main)

    s = sub.add_parser("selftest", help="check the CUDA kernels (on the GPU, or built for the host)",
                       formatter_class=defaults)
    add_selftest_arguments(s)
    s.set_defaults(func=cmd_selftest)
    p.subcommands = {"train": t, "generate": g, "evaluate": e, "gradcheck": c, "diagnose": d, "selftest": s}
    return p


NOT_GIVEN = object()


def given_options(argv):
    """The options a command line gives, by dest: parsed again with every default replaced by a marker
    (argparse fills in a subcommand's defaults itself, so the marker has to be the default)."""
    p = build_parser()
    appended = set()
    for sub in p.subcommands.values():
        for action in sub._actions:
            if isinstance(action, argparse._AppendAction):     # appends to its default: None, not the marker
                action.default = None
                appended.add(action.dest)
            else:
                action.default = NOT_GIVEN
    return {dest for dest, value in vars(p.parse_args(argv)).items()
            if value is not NOT_GIVEN and not (dest in appended and value is None)}


def main(argv=None, started=None):
    """started: the time.perf_counter() at which the command began (launch.main's, before its imports), from which
    --max-minutes counts; none given, now."""
    started = time.perf_counter() if started is None else started
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:                                 # `scratchrnn` alone: its commands, as `pip` alone shows its own
        parser.print_help()
        return
    args = parser.parse_args(argv)
    args.given = given_options(argv) - {"command", "func"}
    args.started = started

    def program():
        if getattr(args, "resume", None) and getattr(args, "init_from", None):
            raise ConfigError("--resume continues a run, --init-from starts a new one from a run's weights: "
                              "give one of them")
        with blas_threads(getattr(args, "threads", None)):
            args.func(args)
    with_one_line_errors(program)


if __name__ == "__main__":
    main()
