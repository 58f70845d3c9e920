"""Training by truncated BPTT and prediction, as d2l.ai's `train_epoch_ch8`, `train_ch8` and `predict_ch8`.

One epoch, for each minibatch (X, Y) of shape (B, T):

    state = begin_state(B)        if random sampling, or first minibatch   (re-initialise)
    state = detach(state)         otherwise (sequential partitioning)      (carry, cut the gradient)
    loss, state = forward/backward over the T steps                        (BPTT within the chunk)
    g = g * min(1, theta / ||g||)                                          (global-norm clipping)
    W = W - lr * g                                                         (SGD)

Perplexity = exp(mean cross-entropy per token over the epoch).
"""
import math
import time

import numpy as np

from .errors import ConfigError, DataError, TrainingDiverged


def detach(state):
    """Truncated BPTT's cut: keep the numbers of the state, drop everything that produced them.

    Our arrays carry no graph, so "detaching" means copying the final state out of the chunk's
    cache: the copy holds no reference to the cache, so the previous chunk can be freed at once,
    and the next backward stops at this state (its gradient there is only reported, never used).
    """
    return [tuple(s.copy() for s in layer_state) for layer_state in state]


def check_hyperparameters(lr, num_epochs, theta=1.0):
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"learning rate must be a positive finite number (got {lr!r})")
    if not (isinstance(num_epochs, int) and num_epochs >= 1):
        raise ConfigError(f"number of epochs must be a positive integer (got {num_epochs!r})")
    if theta is not None and not (math.isfinite(theta) and theta > 0):
        raise ConfigError(f"clipping threshold theta must be a positive finite number (got {theta!r})")


def train_epoch(model, train_iter, lr, theta=1.0, use_random_iter=False, on_step=None):
    """One pass over the data. Returns (perplexity, tokens per second).

    The loss stays on the device and is summed there; it is read once, at the end of the epoch
    (reading it every step would make a GPU wait for every step)."""
    xp = model.xp
    state, total, n_tokens = None, 0.0, 0
    start = time.perf_counter()
    for X, Y in train_iter:
        B, T = X.shape
        if state is None or use_random_iter:
            state = model.begin_state(B)
        else:
            state = detach(state)
        X_t = xp.asarray(np.ascontiguousarray(X.T))                      # (T, B), time-major
        Y_t = xp.asarray(np.ascontiguousarray(Y.T))
        loss, state, _ = model.loss_and_grad(X_t, Y_t, state)
        grad_norm = model.clip_and_sgd(lr, theta)
        total = total + loss * (B * T)
        n_tokens += B * T
        if on_step is not None:
            on_step(loss, grad_norm)
    if n_tokens == 0:
        raise DataError("the data iterator produced no minibatch")
    mean_loss = float(total) / n_tokens                                   # the one host sync
    seconds = time.perf_counter() - start
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(
            "training diverged: the loss became NaN or infinite; lower --lr or keep clipping on (theta)")
    return math.exp(mean_loss), n_tokens / seconds


def predict(prefix, num_preds, model, vocab, temperature=0.0, seed=None):
    """Warm up on `prefix`, then generate `num_preds` tokens.

    temperature 0: greedy (argmax), as the book. temperature > 0: sample from softmax(logits / T)
    with a seeded generator (T < 1 sharper, T > 1 flatter)."""
    if not prefix:
        raise ConfigError("the prefix must not be empty")
    unknown = sorted({ch for ch in prefix if ch not in vocab.token_to_idx})
    if unknown:
        raise ConfigError(f"prefix has characters outside the vocabulary: {''.join(unknown)!r}")
    if temperature < 0 or not math.isfinite(temperature):
        raise ConfigError(f"temperature must be >= 0 (got {temperature!r})")
    xp = model.xp
    rng = np.random.default_rng(seed)
    state = model.begin_state(1)
    outputs = [vocab[prefix[0]]]

    def step(token):
        logits, new_state, _ = model.forward(xp.asarray([[token]], dtype=np.int64), state)
        return np.asarray(logits.get() if xp is not np else logits, dtype=np.float64)[0], new_state

    for ch in prefix[1:]:                                                 # warm-up
        _, state = step(outputs[-1])
        outputs.append(vocab[ch])
    for _ in range(num_preds):                                            # predict num_preds steps
        logits, state = step(outputs[-1])
        if temperature == 0:
            outputs.append(int(logits.argmax()))
        else:
            z = logits / temperature
            p = np.exp(z - z.max())
            outputs.append(int(rng.choice(len(p), p=p / p.sum())))
    return "".join(vocab.idx_to_token[i] for i in outputs)
