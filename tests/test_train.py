import gc
import math
import time
import weakref

import numpy as np
import pytest

from conftest import CELL_NAMES, ENGINES
from scratchrnn.data import SeqDataLoader, load_corpus
from scratchrnn.engines.reference import ReferenceEngine
from scratchrnn.errors import ConfigError, TrainingDiverged
from scratchrnn.model import RNNLM
from scratchrnn.train import (check_hyperparameters, detach, evaluate, generate, predict, prefix_tokens,
                              train_epoch)


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_clipping_bounds_the_norm_and_keeps_the_direction(engine, rng):
    m = RNNLM(9, 6, 2, "gru", dtype="float64", engine=engine)
    g = rng.standard_normal(m.flat_grads.shape) * 10
    m.flat_grads[...] = g
    before = m.flat_params.copy()
    norm = float(m.clip_and_sgd(lr=1.0, theta=1.0))
    assert norm == pytest.approx(np.linalg.norm(g), rel=1e-12)
    step = before - m.flat_params
    assert np.linalg.norm(step) <= 1.0 + 1e-12                                  # clipped to theta
    assert np.linalg.norm(step) == pytest.approx(1.0, rel=1e-9)
    cos = step @ g / (np.linalg.norm(step) * np.linalg.norm(g))
    assert cos == pytest.approx(1.0, abs=1e-12)                                  # same direction
    small = g / np.linalg.norm(g) * 0.5                                          # below theta
    m.flat_grads[...] = small
    before = m.flat_params.copy()
    m.clip_and_sgd(lr=0.1, theta=1.0)
    np.testing.assert_allclose(m.flat_params, before - 0.1 * small, rtol=1e-15, atol=1e-16)  # unscaled


def test_detaching_frees_the_previous_chunk(rng):
    m = RNNLM(9, 6, 2, "lstm", dtype="float64", engine="reference")
    X1 = rng.integers(0, 9, (4, 3))
    logits, state1, cache1 = ReferenceEngine(m).forward_with_cache(X1, m.begin_state(3))
    probe = weakref.ref(cache1[0][0][1])            # an array only chunk 1's cache holds (layer 0's Hs)
    carried = detach(state1)
    assert all(not np.shares_memory(c, s) for a, b in zip(carried, state1) for c, s in zip(a, b))
    del logits, state1, cache1
    gc.collect()
    assert probe() is None                          # nothing of chunk 1 is kept alive


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_no_gradient_leaks_across_a_chunk_boundary(model_on, engine, cell, rng):
    """Truncated BPTT as train_epoch runs it (sequential minibatches, the state carried and detached): the
    gradient of its second step is chunk 2's own, not the one a backward through both chunks gives.
    That one is computed too, through the whole sequence, and split: g_full_2 = 2 g_both - g_1 (the
    mean loss over both chunks is the mean of the two), and what it sends into chunk 1 is non-zero. A
    gradient leaking across the boundary would make step 2's gradient that full one."""
    V, B, T = 9, 3, 5
    m = model_on(engine, V, 6, 2, cell, dtype="float64", seed=4)
    X, Y = rng.integers(0, V, (B, 2 * T)), rng.integers(0, V, (B, 2 * T))     # the loader's (B, T) layout
    batches = [(X[:, :T], Y[:, :T]), (X[:, T:], Y[:, T:])]
    grads = []
    train_epoch(m, batches, lr=0.0, theta=None, on_step=lambda pos, norm: grads.append(m.flat_grads.copy()))
    g_1, g_2 = grads                                                       # lr 0: the weights never moved
    m.loss_and_grad(np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), m.begin_state(B))
    g_full_2 = 2 * m.flat_grads - g_1                                      # dL_2/dw through both chunks
    _, middle, _ = m.loss_and_grad(np.ascontiguousarray(X[:, :T].T), np.ascontiguousarray(Y[:, :T].T),
                                   m.begin_state(B))
    _, _, d_middle = m.loss_and_grad(np.ascontiguousarray(X[:, T:].T), np.ascontiguousarray(Y[:, T:].T),
                                     detach(middle))
    np.testing.assert_allclose(g_2, m.flat_grads, rtol=1e-12, atol=1e-15)  # chunk 2 alone, from the numbers
    through_chunk_1 = g_full_2 - g_2
    m.loss_and_grad(np.ascontiguousarray(X[:, :T].T), np.ascontiguousarray(Y[:, :T].T), m.begin_state(B),
                    dstate=d_middle)                                       # chunk 1 walked back from chunk 2's
    np.testing.assert_allclose(m.flat_grads - g_1, through_chunk_1, rtol=1e-9, atol=1e-12)
    assert np.linalg.norm(through_chunk_1) > 1e-3 * np.linalg.norm(g_full_2)
    assert np.linalg.norm(g_2 - g_full_2) > 1e-3 * np.linalg.norm(g_full_2)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("random_iter", [False, True])
def test_training_lowers_perplexity(cell, random_iter):
    corpus, vocab = load_corpus(max_tokens=3000)
    it = SeqDataLoader(corpus, 16, 20, use_random_iter=random_iter, seed=0)
    m = RNNLM(len(vocab), 48, 1, cell, engine="fast")
    first, _ = train_epoch(m, it, lr=1.0, use_random_iter=random_iter)
    for _ in range(15):
        last, speed = train_epoch(m, it, lr=1.0, use_random_iter=random_iter)
    assert first > 15 and last < 0.85 * first and speed > 0


def test_tokens_per_second_leave_out_what_on_step_does():
    """on_step's own time (a checkpoint written inside the epoch, a validation) is not training time, as the work at
    an epoch's end is not: 0.05 s of it per minibatch, against a tiny model's few milliseconds, leaves the rate."""
    corpus, vocab = load_corpus(max_tokens=3000)
    it = SeqDataLoader(corpus, 16, 20, seed=0)
    m = RNNLM(len(vocab), 16, 1, "rnn", engine="fast")
    train_epoch(m, it, lr=1.0)                                                # compiled
    _, busy = train_epoch(m, it, lr=1.0, on_step=lambda pos, norm: time.sleep(0.05))
    assert busy > 10 * (16 * 20 / 0.05), busy                   # counted, the sleep alone caps it at 6,400 tokens/s


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_run_stops_and_says_so():
    corpus, vocab = load_corpus(max_tokens=3000)
    m = RNNLM(len(vocab), 32, 1, "rnn", nonlinearity="relu", engine="fast")
    it = SeqDataLoader(corpus, 16, 20)
    with pytest.raises(TrainingDiverged, match="diverged"):
        for _ in range(20):
            train_epoch(m, it, lr=1e6, theta=None)


def test_a_loss_past_exps_range_is_a_divergence_not_an_overflow_error():
    """A finite mean loss above ~709.78 nats has no float perplexity: math.exp raised OverflowError (a traceback
    from the command, at lr 1000); now evaluate says inf and train_epoch says the run diverged."""
    corpus, vocab = load_corpus(max_tokens=3000)
    m = RNNLM(len(vocab), 32, 1, "rnn", dtype="float64", engine="fast")
    m.flat_params[...] *= 1e4                                                   # logits in the tens of thousands
    assert evaluate(m, corpus, 16, 20) == math.inf
    with pytest.raises(TrainingDiverged, match="mean loss became"):
        train_epoch(m, SeqDataLoader(corpus, 16, 20), lr=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_evaluate_whole_scores_every_token_of_every_row_as_one_chunk_would(engine, model_on):
    """evaluate(whole=True) (scratchrnn evaluate) scores each row to its last token, its last chunk shorter: the
    same perplexity as one chunk the length of the row (the state carried between chunks is the same computation);
    without whole a row's tokens short of a whole chunk are left out, as the training's validation leaves them."""
    from scratchrnn.train import evaluation_rows
    corpus, vocab = load_corpus(max_tokens=1000)
    m = model_on(engine, len(vocab), 16, 2, "lstm", dtype="float64", seed=1)
    rows, length, scored = evaluation_rows(len(corpus), 4, 35, whole=True)
    assert (rows, length, scored) == (4, 249, 996)                           # 999 targets, the last 3 left out
    told = []                                                                 # progress: each chunk's tokens
    assert evaluate(m, corpus, 4, 35, whole=True, progress=told.append) == pytest.approx(
        evaluate(m, corpus[:997], 4, 249), rel=1e-12)
    assert told == [4 * 35] * 7 + [4 * 4] and sum(told) == scored
    assert evaluation_rows(len(corpus), 4, 35) == (4, 249, 980)             # 7 chunks of 35 a row
    assert evaluate(m, corpus, 4, 35) != pytest.approx(evaluate(m, corpus, 4, 35, whole=True), rel=1e-6)
    assert evaluation_rows(3, 32, 35, whole=True) == (2, 1, 2)               # a text shorter than a chunk


@pytest.mark.parametrize("lr, epochs, theta", [(0, 1, 1.0), (-1, 1, 1.0), (math.nan, 1, 1.0),
                                               (math.inf, 1, 1.0), (1.0, 0, 1.0), (1.0, 1, -1.0)])
def test_nonsense_hyperparameters(lr, epochs, theta):
    with pytest.raises(ConfigError):
        check_hyperparameters(lr, epochs, theta)


def test_predict_greedy_and_sampled():
    corpus, vocab = load_corpus(max_tokens=3000)
    m = RNNLM(len(vocab), 32, 2, "lstm", seed=4)
    greedy = predict("time traveller", 20, m, vocab)
    assert greedy.startswith("time traveller") and len(greedy) == len("time traveller") + 20
    assert predict("time traveller", 20, m, vocab) == greedy
    s1 = predict("time", 30, m, vocab, temperature=1.0, seed=7)
    assert s1 == predict("time", 30, m, vocab, temperature=1.0, seed=7)
    assert s1 != predict("time", 30, m, vocab, temperature=1.0, seed=8)
    with pytest.raises(ConfigError, match="outside the vocabulary: 'TX'"):
        predict("Time X", 5, m, vocab)
    with pytest.raises(ConfigError, match="empty"):
        predict("", 5, m, vocab)


@pytest.mark.parametrize("temperature", [0.0, 1.0, 5.0])
def test_unk_is_never_generated(temperature):
    """'<unk>' stands for what the model was not shown, not for text: left out of the argmax and of the softmax
    even where the model puts nearly all its probability on it (its output bias raised by 50 here); top-k then
    picks among the others (k = 1: the greedy choice)."""
    corpus, vocab = load_corpus(max_tokens=3000)
    m = RNNLM(len(vocab), 16, 1, "gru", seed=1)
    m.params["b_q"][vocab.unk] += 50
    for prefix in ("time", None):
        tokens = list(generate(prefix, 60, m, vocab, temperature=temperature, seed=3))
        assert len(tokens) == 60 and "<unk>" not in tokens
    greedy = list(generate("time", 30, m, vocab))
    assert list(generate("time", 30, m, vocab, temperature=temperature or 1.0, seed=5, top_k=1)) == greedy


def test_a_prefix_is_read_as_a_text_is(tmp_path):
    """data.normalize, as for a corpus: "\r\n" and a lone "\r" read as "\n", NFD as NFC ("\r" was a character
    outside the vocabulary before, and a Windows prompt may send one)."""
    (tmp_path / "t.txt").write_text("caf\u00e9 au lait\nencore\n" * 50, encoding="utf-8")
    _, vocab = load_corpus(tmp_path / "t.txt", max_tokens=-1, charset="raw")
    expected = prefix_tokens("caf\u00e9\nen\n", vocab)
    assert prefix_tokens("cafe\u0301\r\nen\r", vocab) == expected == list("caf\u00e9\nen\n")


def test_prediction_warm_up_uses_the_prefix():
    """The state after the warm-up depends on the whole prefix, not only on its last character."""
    corpus, vocab = load_corpus()
    m = RNNLM(len(vocab), 64, 1, "gru", seed=0)
    it = SeqDataLoader(corpus, 32, 35)
    for _ in range(20):
        train_epoch(m, it, lr=1.0)
    outs = {predict(p, 15, m, vocab)[len(p):] for p in ("the time traveller", "a traveller", "xxxxxxxr")}
    assert len(outs) > 1
