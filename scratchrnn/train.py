"""Training by truncated BPTT and prediction, as d2l.ai's `train_epoch_ch8`, `train_ch8` and `predict_ch8`.

One epoch, for each minibatch (X, Y) of shape (B, T):

    state = begin_state(B)        if random sampling, or first minibatch   (re-initialise)
    state = detach(state)         otherwise (sequential partitioning)      (carry, cut the gradient)
    loss, state = forward/backward over the T steps                        (BPTT within the chunk)
    g = g * theta / ||g||   if ||g|| > theta                               (global-norm clipping)
    W = W - lr * g                                                         (SGD)

Perplexity = exp(mean cross-entropy per token over the epoch).
"""
import math
import time

import numpy as np

from . import output
from .backend import to_numpy
from .data import normalize
from .engines import clipping_threshold
from .errors import ConfigError, DataError, TrainingDiverged

# The book's training recipe, read by the command line and the checkpoint's config under these names.
TRAIN_DEFAULTS = dict(epochs=500, lr=1.0, theta=1.0, batch_size=32, num_steps=35, random_iter=False)


def detach(state):
    """Truncated BPTT's cut: keep the numbers of the state, drop everything that produced them.

    Our arrays carry no graph, so "detaching" means copying the final state out of the chunk's
    cache: the copy holds no reference to the cache, so the previous chunk can be freed at once,
    and the next backward stops at this state (its gradient there is only reported, never used).
    """
    return [tuple(s.copy() for s in layer_state) for layer_state in state]


def check_hyperparameters(lr, num_epochs, theta=1.0):
    """Before training: a learning rate, a number of epochs and a clipping threshold that make sense."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"learning rate must be a positive finite number (got {lr!r})")
    if not (isinstance(num_epochs, int) and num_epochs >= 1):
        raise ConfigError(f"number of epochs must be a positive integer (got {num_epochs!r})")
    clipping_threshold(theta)


class EpochPosition:
    """Where an epoch stands after a step: what a checkpoint needs to continue it exactly.
    batch: minibatches done; state: the carried hidden state; loss_sum, tokens: the running totals."""

    def __init__(self, batch=0, state=None, loss_sum=0.0, tokens=0, seconds=0.0):
        self.batch, self.state, self.loss_sum, self.tokens, self.seconds = batch, state, loss_sum, tokens, seconds


def time_major_batches(xp, train_iter):
    """The minibatches (B, T) of the iterator as (T, B) arrays on the model's device.

    On the GPU the whole epoch is copied in one go: a copy from ordinary host memory waits for the
    GPU to finish its queued work, so copying each minibatch would stall the GPU at every step."""
    if xp is np:
        for X, Y in train_iter:
            yield np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
        return
    batches = list(train_iter)
    if not batches:
        return
    Xs = xp.asarray(np.stack([X.T for X, _ in batches]))                  # (n, T, B), one copy
    Ys = xp.asarray(np.stack([Y.T for _, Y in batches]))
    for X_t, Y_t in zip(Xs, Ys):
        yield X_t, Y_t


def perplexity(mean_loss):
    """exp(mean cross-entropy per token), infinite where it passes float's range (a loss above ~709.78 nats,
    which only a diverging model reaches) instead of an OverflowError."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


def train_epoch(model, train_iter, lr, theta=1.0, use_random_iter=False, on_step=None, resume=None, optimizer=None):
    """One pass over the data. Returns (perplexity, tokens per second).

    lr: the learning rate, or a function of the step's index in the epoch that gives it (a schedule).
    optimizer: an optimizers.Optimizer made for this model; None is the book's SGD.
    The loss stays on the device and is summed there; it is read once, at the end of the epoch
    (reading it every step would make a GPU wait for every step).
    on_step(position, grad_norm) is called after every step (the time it takes is not counted in tokens per second);
    resume (an EpochPosition) continues an epoch that was stopped after `resume.batch` minibatches (the iterator must
    cut the same batches)."""
    xp = model.xp
    pos = resume or EpochPosition()
    start = time.perf_counter() - pos.seconds
    with np.errstate(all="ignore"):            # an overflow shows up as a non-finite loss, checked below
        for i, (X_t, Y_t) in enumerate(time_major_batches(xp, train_iter)):
            if i < pos.batch:                                                 # done before the stop
                continue
            T, B = X_t.shape
            if pos.state is None or use_random_iter:
                state = model.begin_state(B)
            else:
                state = detach(pos.state)
            loss, state, _ = model.loss_and_grad(X_t, Y_t, state, state_grad=False)     # the state is detached
            rate = lr(i) if callable(lr) else lr
            grad_norm = model.clip_and_sgd(rate, theta) if optimizer is None else model.update(optimizer, rate, theta)
            pos.batch, pos.state = i + 1, state
            pos.loss_sum = pos.loss_sum + loss * (B * T)
            pos.tokens += B * T
            if on_step is not None:
                pos.seconds = time.perf_counter() - start
                on_step(pos, grad_norm)
                start = time.perf_counter() - pos.seconds     # on_step's own time (a checkpoint, a validation) is
                #                                                not training time, as the epoch's end's is not
    if pos.tokens == 0:
        raise DataError("the data iterator produced no minibatch")
    mean_loss = float(pos.loss_sum) / pos.tokens                          # the one host sync
    seconds = time.perf_counter() - start
    check_converging(mean_loss)
    return perplexity(mean_loss), pos.tokens / seconds


def check_converging(mean_loss, where=""):
    """A mean loss whose perplexity is NaN, infinite or past exp's range is a diverged run: TrainingDiverged (one line;
    where: at which minibatch, when it is found inside the epoch)."""
    if not math.isfinite(perplexity(mean_loss)):
        raise TrainingDiverged(f"training diverged: the mean loss became {mean_loss:.4g}{where} (perplexity beyond "
                               f"float's range); lower --lr or keep clipping on (theta)")


class EvaluationInterrupted(Exception):
    """evaluate was asked to stop (its `interrupted` said so) before its end: it had scored `scored` tokens, at the
    perplexity `so_far` (None for none)."""

    def __init__(self, scored=0, so_far=None):
        super().__init__(scored, so_far)
        self.scored, self.so_far = scored, so_far


def evaluation_rows(tokens, batch_size, num_steps, whole=False):
    """How evaluate cuts a text of `tokens` tokens: -> (rows, tokens a row, tokens scored). Each row is read from a
    zero state; a row's last tokens short of a whole chunk are not scored, unless `whole` (then every row's tokens
    are, the last chunk shorter, and only the text's last rows - 1 tokens at most are left out)."""
    rows = min(batch_size, (tokens - 1) if whole else (tokens - 1) // num_steps)
    if rows < 1:
        raise DataError(f"validation text of {tokens} tokens is shorter than one chunk of {num_steps}")
    length = (tokens - 1) // rows
    return rows, length, rows * (length if whole else (length // num_steps) * num_steps)


def evaluate(model, corpus, batch_size, num_steps, interrupted=None, whole=False, progress=None):
    """Perplexity on held-out tokens: the text cut into `batch_size` rows read left to right in chunks
    of `num_steps`, the state carried across chunks; forward only (the model's engine, so as fast as
    training), no gradient, no update. The loss is read once, at the end. interrupted(): asked before each chunk,
    True stops the pass (EvaluationInterrupted, with the perplexity of the tokens scored so far): a validation text of
    millions of tokens takes minutes, and a Ctrl-C should not wait for it. whole: every row's tokens scored
    (evaluation_rows), its last chunk shorter. progress(n): told after each chunk the n tokens it scored (a progress
    bar)."""
    xp = model.xp
    rows, length, scored = evaluation_rows(len(corpus), batch_size, num_steps, whole)
    Xs = np.asarray(corpus[:rows * length]).reshape(rows, length)
    Ys = np.asarray(corpus[1:rows * length + 1]).reshape(rows, length)
    state, total, n = model.begin_state(rows), 0.0, 0
    for i in range(0, scored // rows, num_steps):
        if interrupted is not None and interrupted():
            raise EvaluationInterrupted(n, perplexity(float(total) / n) if n else None)
        X = xp.asarray(np.ascontiguousarray(Xs[:, i:i + num_steps].T))
        Y = xp.asarray(np.ascontiguousarray(Ys[:, i:i + num_steps].T))
        logits, state = model.forward(X, state)
        loss, _ = output.softmax_cross_entropy(logits, Y.reshape(-1))
        total, n = total + loss * X.size, n + X.size              # summed on the device
        if progress is not None:
            progress(X.size)
    return perplexity(float(total) / n)                                 # the one host sync


def prefix_tokens(prefix, vocab, unk_trained=False, report=None):
    """The prefix as tokens of this vocabulary (characters or words), or a ConfigError naming the
    ones it lacks: check it before a long training run, not after. unk_trained: the model was shown '<unk>' for
    the tokens its run left out (--min-freq; --init-from before it grew the vocabulary), and reads the prefix's
    the same way (report(line): told which, in one line)."""
    sep = vocab.sep                                                       # "" for characters, " " for words
    prefix = normalize(prefix)                                            # as every text is read: NFC, \r\n -> \n
    tokens = list(prefix) if sep == "" else prefix.split()
    if not tokens:
        raise ConfigError("the prefix must not be empty")
    unknown = sorted({tok for tok in tokens if tok not in vocab.token_to_idx})
    if unknown and not unk_trained:
        what = "characters" if sep == "" else "words"
        raise ConfigError(f"prefix has {what} outside the vocabulary: {sep.join(unknown)!r}")
    if unknown and report is not None:
        report(f"note: the prefix's {' '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not in "
               f"the run's vocabulary, and read as <unk>, as its training text's were")
    return tokens


def generate(prefix, num_preds, model, vocab, temperature=0.0, seed=None, top_k=None, unk_trained=False,
             report=None):
    """Warm up on `prefix`, then yield `num_preds` tokens, one at a time, as they are produced.

    temperature 0: greedy (argmax), as the book. temperature > 0: sample from softmax(logits / T)
    with a seeded generator (T < 1 sharper, T > 1 flatter); top_k: only among the k most likely tokens.
    prefix None: the first token is drawn uniformly from the vocabulary ('<unk>' aside) with the same
    generator, as char-rnn and torch-rnn start without a prime text; it is the first of the `num_preds`.
    '<unk>' is never generated: it stands for whatever the model was not shown, not for a token of text (a
    model whose text had tokens read as <unk>, --min-freq's, learns to predict it), so it is left out
    of the argmax and of the softmax, its probability going to the others.

    unk_trained, report: prefix_tokens'.

    The arguments are checked here, at the call, before the first token is asked for: a caller that
    prints the prefix and then the tokens prints nothing when one is wrong."""
    rng = np.random.default_rng(seed)
    if temperature < 0 or not math.isfinite(temperature):
        raise ConfigError(f"temperature must be a finite number >= 0 (got {temperature!r})")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top-k must be a positive integer (got {top_k!r})")
    if top_k is not None and temperature == 0:                            # it did nothing, silently
        raise ConfigError(f"top-k {top_k} samples among the {top_k} most likely tokens, which temperature 0 (greedy, "
                          f"the default) does not do: give a temperature > 0 with it (1: the model's own odds)")
    if prefix is None:
        first = vocab.idx_to_token[int(rng.integers(1, len(vocab))) if len(vocab) > 1 else 0]
        return _continue([first], num_preds - 1, model, vocab, temperature, rng, top_k, yield_prefix=True)
    return _continue(prefix_tokens(prefix, vocab, unk_trained, report), num_preds, model, vocab, temperature, rng,
                     top_k)


def _continue(prefix, num_preds, model, vocab, temperature, rng, top_k, yield_prefix=False):
    """generate's loop over checked arguments: the prefix's tokens (yielded first with yield_prefix),
    then num_preds more."""
    if yield_prefix:
        yield from prefix
    xp = model.xp
    state = model.begin_state(1)
    token = vocab[prefix[0]]

    def step(token):                                                      # the model's engine, forward only
        with np.errstate(all="ignore"):                                   # an overflow: checked below
            logits, new_state = model.forward(xp.asarray([[token]], dtype=np.int64), state)
        return np.array(to_numpy(logits)[0], dtype=np.float64), new_state

    for ch in prefix[1:]:                                                 # warm-up
        _, state = step(token)
        token = vocab[ch]
    for n in range(num_preds):                                            # predict num_preds steps
        logits, state = step(token)
        if not np.isfinite(logits).all():                                 # (a ReLU RNN's state has no bound)
            raise DataError(f"the model's numbers overflowed {len(prefix) + n:,} tokens into the text (its state "
                            f"left the float range): it has no next token to give")
        if len(logits) > 1:
            logits[vocab.unk] = -np.inf                                   # '<unk>' is not text
        if temperature == 0:
            token = int(logits.argmax())
        else:
            z = logits / temperature
            if top_k is not None and top_k < len(z):
                z[z < np.partition(z, -top_k)[-top_k]] = -np.inf           # all but the k largest
            p = np.exp(z - z.max())
            token = int(rng.choice(len(p), p=p / p.sum()))
        yield vocab.idx_to_token[token]


def predict(prefix, num_preds, model, vocab, temperature=0.0, seed=None, top_k=None):
    """The book's `predict_ch8`: the prefix and the `num_preds` tokens that follow it, as one string."""
    tokens = list(generate(prefix, num_preds, model, vocab, temperature, seed, top_k))
    if prefix is None:
        return vocab.sep.join(tokens)
    return vocab.sep.join([prefix] + tokens) if tokens else prefix
