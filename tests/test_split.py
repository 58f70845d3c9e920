"""The fast-split engine (engines/split.py: each training chunk's batch in two halves, one computed by a worker
process) against the readable reference and the fast engine, and its worker's life: start, one clear line when it
fails, the end."""
import glob
import os
import signal

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from conftest import every_engine_case, read_until, running, trained_on_threads
from scratchrnn import cli
from scratchrnn.checkpoint import load_checkpoint
from scratchrnn.data import seq_data_iter_random, seq_data_iter_sequential
from scratchrnn.engines import mkl
from scratchrnn.engines.split import halves, kill, split_state, stack_state
from scratchrnn.errors import ConfigError, WorkerError
from scratchrnn.gradcheck import relative_error
from scratchrnn.model import RNNLM
from scratchrnn.train import detach

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
BLASES = ["numpy", pytest.param("mkl", marks=pytest.mark.skipif(mkl.load()[0] is None, reason="MKL not installed"))]


def assert_close(a, b, tol, what):
    assert relative_error(a, b) <= tol, what


def assert_same_step(ref, split, X, Y, state, tol, dstate=None, masks=None):
    """One chunk on both: loss, every gradient, the final state and dL/d(initial state) agree to tol."""
    loss_r, state_r, d0_r = ref.loss_and_grad(X, Y, state, dstate, masks)
    loss_s, state_s, d0_s = split.loss_and_grad(X, Y, state, dstate, masks)
    assert abs(float(loss_r) - float(loss_s)) <= tol * abs(float(loss_r))
    for name in ref.grads:
        assert_close(ref.grads[name], split.grads[name], tol, name)
    for which, (r, s) in (("state", (state_r, state_s)), ("dstate0", (d0_r, d0_s))):
        for layer_r, layer_s in zip(r, s):
            for a, b in zip(layer_r, layer_s):
                assert a.shape == b.shape
                assert_close(a, b, tol, which)
    return state_r


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("blas", BLASES)
@every_engine_case
def test_split_engine_equals_reference(cell, nonlinearity, num_layers, random_iter, dtype, blas, threads, rng,
                                       monkeypatch):
    """An odd batch (halves of 3 and 2), three chunks with the state carried or fresh, at 1 and 2 BLAS threads
    for the process that trains."""
    monkeypatch.setenv(mkl.VARIABLE, blas)
    V, H, B, T = 13, 16, 5, 7
    ref = RNNLM(V, H, num_layers, cell, nonlinearity=nonlinearity, dtype=dtype, engine="reference", seed=2)
    split = RNNLM(V, H, num_layers, cell, nonlinearity=nonlinearity, dtype=dtype, engine="fast-split", seed=2)
    np.testing.assert_array_equal(ref.flat_params, split.flat_params)
    corpus = rng.integers(0, V, size=B * T * 5)
    iterate = seq_data_iter_random if random_iter else seq_data_iter_sequential
    state = None
    with threadpool_limits(threads):
        for X, Y in list(iterate(corpus, B, T, np.random.default_rng(0)))[:3]:
            if state is None or random_iter:
                state = ref.begin_state(B)
            X_t, Y_t = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
            state = detach(assert_same_step(ref, split, X_t, Y_t, state, TOLERANCE[dtype]))
    assert split.engine.worker[0] is not None                      # the halves did run on two processes
    split.engine.close()


@pytest.mark.parametrize("B", [2, 5, 6])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_gradient_reaching_the_final_state_and_dropout_masks_go_to_each_half(cell, B, rng):
    """dstate (of the mean loss) reaches each half over its share, dL/d(initial state) comes back times it; each
    half gets its columns of the masks; an embedding's rows are shared."""
    V, H, L, T = 11, 8, 2, 6
    ref = RNNLM(V, H, L, cell, dtype="float64", engine="reference", seed=4, embedding_dim=5, dropout=0.3)
    split = RNNLM(V, H, L, cell, dtype="float64", engine="fast-split", seed=4, embedding_dim=5, dropout=0.3)
    X, Y = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    S = len(ref.cell.STATE)
    state = [tuple(rng.standard_normal((B, H)) for _ in range(S)) for _ in range(L)]
    dstate = [tuple(rng.standard_normal((B, H)) for _ in range(S)) for _ in range(L)]
    masks = ref.dropout_masks(T, B)
    assert_same_step(ref, split, X, Y, state, 1e-10, dstate, masks)
    # Without dL/d(initial state) (training's call): None for it from both processes, the same gradients, bit for bit.
    grads = split.flat_grads.copy()
    _, _, d0 = split.loss_and_grad(X, Y, state, dstate, masks, state_grad=False)
    assert d0 is None
    np.testing.assert_array_equal(split.flat_grads, grads)
    split.engine.close()


def test_the_halves_and_their_shares():
    assert [halves(B) for B in (2, 3, 32, 33)] == [(1, 1), (2, 1), (16, 16), (17, 16)]
    a = np.arange(10.0).reshape(5, 2)
    first, second = split_state([(a,)], 3, (2.0, 0.5))
    np.testing.assert_array_equal(first[0][0], a[:3] * 2)
    np.testing.assert_array_equal(second[0][0], a[3:] * 0.5)
    np.testing.assert_array_equal(stack_state(first, second, (0.5, 2.0))[0][0], a)
    assert split_state(None, 3) == (None, None)


def test_training_with_updates_follows_the_fast_engine(rng):
    """Ten chunks of training (clipping, SGD) with the state carried: the same parameters as the fast engine's
    on the whole batch, to float64's rounding; the forward alone and a chunk of one sequence run here."""
    V, H, B, T = 13, 16, 8, 9
    fast = RNNLM(V, H, 2, "lstm", dtype="float64", engine="fast", seed=5)
    split = RNNLM(V, H, 2, "lstm", dtype="float64", engine="fast-split", seed=5)
    corpus = rng.integers(0, V, size=B * T * 11)
    states = [fast.begin_state(B), split.begin_state(B)]
    for X, Y in list(seq_data_iter_sequential(corpus, B, T, np.random.default_rng(0)))[:10]:
        X, Y = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
        for i, m in enumerate((fast, split)):
            _, states[i], _ = m.loss_and_grad(X, Y, detach(states[i]))
            m.clip_and_sgd(1.0, 1.0)
    assert_close(fast.flat_params, split.flat_params, 1e-10, "parameters")
    assert not np.array_equal(fast.flat_params, RNNLM(V, H, 2, "lstm", dtype="float64", seed=5).flat_params)
    logits_f, _ = fast.forward(X, states[0])
    logits_s, _ = split.forward(X, states[1])
    assert_close(logits_f, logits_s, 1e-10, "forward")
    loss_f, _, _ = fast.loss_and_grad(X[:, :1], Y[:, :1], fast.begin_state(1))
    loss_s, _, _ = split.loss_and_grad(X[:, :1], Y[:, :1], split.begin_state(1))
    assert abs(float(loss_f) - float(loss_s)) <= 1e-10 * abs(float(loss_f))
    split.engine.close()


@pytest.mark.parametrize("blas", BLASES)
def test_its_sums_do_not_follow_the_callers_blas_threads(blas, monkeypatch):
    """Each half of a training chunk runs on one thread, whatever the caller's: training on one thread and on two ends
    with the same bits, with MKL too (whose fast engine, on these 35 x 32 chunks, does not: by up to 1.5e-8, Intel
    Xeon family 6 model 207, 2026-12-07), and the engine says so (threads_change_sums: a resume on other threads
    needs no note); a chunk of one sequence, not split, runs on the caller's: the inner engine's answer."""
    monkeypatch.setenv(mkl.VARIABLE, blas)
    one, two = (RNNLM(11, 128, 2, "lstm", engine="fast-split", seed=3) for _ in range(2))
    assert not one.engine.threads_change_sums(1, 2, 32)
    assert np.array_equal(trained_on_threads(one, 1, B=32, T=35), trained_on_threads(two, 2, B=32, T=35))
    monkeypatch.setattr(one.engine.inner, "threads_change_sums", lambda then, now, batch_size: then != now)
    assert one.engine.threads_change_sums(1, 2, 1) and not one.engine.threads_change_sums(1, 2, 2)
    one.engine.close()
    two.engine.close()


def test_the_worker_sees_each_update_through_the_shared_parameters(rng):
    """A change to the parameters here (in place, as every optimiser's) is the worker's at its next chunk."""
    V, H, B, T = 9, 8, 4, 5
    split = RNNLM(V, H, 1, "gru", dtype="float64", engine="fast-split", seed=6)
    ref = RNNLM(V, H, 1, "gru", dtype="float64", engine="reference", seed=6)
    X, Y = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    split.loss_and_grad(X, Y, split.begin_state(B))
    change = rng.standard_normal(split.flat_params.shape)
    split.flat_params += change
    ref.flat_params += change
    assert_same_step(ref, split, X, Y, ref.begin_state(B), 1e-10)
    split.engine.close()


def test_a_worker_that_dies_is_one_clear_line_and_close_keeps_the_parameters(rng):
    V, H, B, T = 9, 8, 4, 5
    split = RNNLM(V, H, 1, "lstm", engine="fast-split", seed=7)
    X, Y = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    split.loss_and_grad(X, Y, split.begin_state(B))
    process = split.engine.worker[0][0]
    registered = f"/dev/shm/__KMP_REGISTERED_LIB_{process.pid}_*"    # libiomp5's file, where the worker runs MKL
    if mkl.chosen() and os.path.isdir("/dev/shm"):
        assert glob.glob(registered)                                      # there before the kill
    kill(process)                                                         # SIGKILL; then its file removed
    assert process.returncode == -signal.SIGKILL and not glob.glob(registered)
    with pytest.raises(WorkerError, match="worker process ended"):
        split.loss_and_grad(X, Y, split.begin_state(B))
    # the next chunk starts a new worker
    loss, _, _ = split.loss_and_grad(X, Y, split.begin_state(B))
    assert np.isfinite(float(loss)) and split.engine.worker[0][0].pid != process.pid
    before = split.flat_params.copy()
    worker = split.engine.worker[0][0]
    split.engine.close()
    assert worker.poll() is not None                                # the worker has ended
    np.testing.assert_array_equal(split.flat_params, before)        # the parameters, copied out of the shared memory
    loss_after, _, _ = split.loss_and_grad(X, Y, split.begin_state(B))   # closed: the whole batch here
    assert abs(float(loss_after) - float(loss)) <= 1e-5 * abs(float(loss))


def test_the_split_engine_is_for_the_cpu():
    with pytest.raises(ConfigError, match="CPU only"):
        from scratchrnn.engines import make_engine
        import types
        make_engine(types.SimpleNamespace(device="gpu", xp=None), "fast-split")


def test_the_command_trains_on_the_split_engine_and_resumes_bit_for_bit(tmp_path):
    """The scratchrnn command with --engine fast-split: 4 epochs in one go == 2, then a resume for 2 more, and the
    same model as the fast engine's to float32's rounding."""
    small = ["--hidden", "16", "--layers", "2", "--max-tokens", "3000", "--charset", "book", "--batch-size", "8",
             "--num-steps", "10", "--device", "cpu", "--log-every", "1"]
    one, two, fast = tmp_path / "one", tmp_path / "two", tmp_path / "fast"
    cli.main(["train", "--out", str(one), "--epochs", "4", "--engine", "fast-split", *small])
    cli.main(["train", "--out", str(two), "--epochs", "2", "--engine", "fast-split", *small])
    cli.main(["train", "--resume", str(two), "--epochs", "4", "--device", "cpu"])
    cli.main(["train", "--out", str(fast), "--epochs", "4", "--engine", "fast", *small])
    a, ma = load_checkpoint(one / "last.npz")
    b, mb = load_checkpoint(two / "last.npz")
    c, _ = load_checkpoint(fast / "last.npz")
    assert ma["epoch"] == mb["epoch"] == 4 and ma["config"]["engine"] == "fast-split"
    for key in a:
        assert np.array_equal(a[key], b[key]), key
        if not key.startswith("state."):
            assert relative_error(a[key], c[key]) <= 1e-4, key


@pytest.mark.parametrize("lost_at", [40, 34])                # inside epoch 2; at its first minibatch
def test_a_worker_lost_in_training_saves_the_run_where_it_stands_and_it_resumes_bit_for_bit(tmp_path, monkeypatch,
                                                                                           capsys, lost_at):
    """The worker killed during training (kill -9, the kernel's out-of-memory killer) ended the run with "the
    fast-split engine's worker process ended (exit status -9)": the epoch's minibatches were lost, and the line said
    neither where the run stood nor how to go on. Now the run is saved at the last minibatch done (the failed one
    changed no weight and drew no dropout mask: the model's generator is put back), the line says so and how to
    resume, and the resume ends with the bits of a run never stopped (dropout 0.4, the default, on)."""
    from scratchrnn.engines.split import SplitEngine
    small = ["--hidden", "16", "--layers", "2", "--max-tokens", "3000", "--charset", "book", "--batch-size", "8",
             "--num-steps", "10", "--device", "cpu", "--log-every", "1", "--engine", "fast-split", "--epochs", "3"]
    whole, lost = tmp_path / "whole", tmp_path / "lost"
    cli.main(["train", "--out", str(whole), *small])
    chunks = {"n": 0}
    real = SplitEngine.loss_and_grad

    def killing_the_worker(self, *args, **kwargs):
        chunks["n"] += 1
        if chunks["n"] == lost_at:
            kill(self.worker[0][0])
        return real(self, *args, **kwargs)
    monkeypatch.setattr(SplitEngine, "loss_and_grad", killing_the_worker)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--out", str(lost), *small])
    said = capsys.readouterr().err
    _, manifest = load_checkpoint(lost / "last.npz")
    place = (f"at epoch 2, minibatch {manifest['batch']}" if manifest["batch"] else "after epoch 1")
    assert e.value.code == cli.EXIT_ERROR and said == (
        f"error: the fast-split engine's worker process ended (killed by SIGKILL): saved {lost / 'last.npz'} {place}; "
        f"resume with: scratchrnn train --resume {lost} (--engine fast trains without a worker)\n")
    assert manifest["epoch"] * 33 + manifest["batch"] in (lost_at - 1, lost_at - 2)     # (33-34 minibatches an epoch)
    monkeypatch.undo()
    cli.main(["train", "--resume", str(lost)])
    a, _ = load_checkpoint(whole / "last.npz")
    b, mb = load_checkpoint(lost / "last.npz")
    assert mb["epoch"] == 3 and a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_a_worker_lost_after_the_run_folder_was_removed_names_no_checkpoint(tmp_path, monkeypatch, capsys):
    """The worker lost at a resume's first minibatch (nothing trained to save) said the run's last.npz was kept, from
    the record of the run's checkpoint alone: where the folder had been removed meanwhile (`rm -rf`), it named a file
    that was gone. The line is the worker's alone then."""
    import shutil

    from scratchrnn.engines.split import SplitEngine
    small = ["--hidden", "16", "--layers", "1", "--max-tokens", "3000", "--charset", "book", "--batch-size", "8",
             "--num-steps", "10", "--device", "cpu", "--engine", "fast-split", "--epochs", "1"]
    real, chunks, lost = SplitEngine.loss_and_grad, {"n": 0}, tmp_path / "lost"
    cli.main(["train", "--out", str(lost), *small])

    def killing_the_worker(self, *args, **kwargs):
        chunks["n"] += 1
        if chunks["n"] == 1:
            shutil.rmtree(lost)
            self.start_worker()                                     # (started at its first chunk)
            kill(self.worker[0][0])
        return real(self, *args, **kwargs)
    monkeypatch.setattr(SplitEngine, "loss_and_grad", killing_the_worker)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--resume", str(lost), "--epochs", "2"])
    assert e.value.code == cli.EXIT_ERROR and capsys.readouterr().err == (
        "error: the fast-split engine's worker process ended (killed by SIGKILL)\n")


def test_the_memory_check_counts_the_workers_gradients(monkeypatch):
    """model.training_bytes for fast-split: the fast engine's and one more gradient buffer (the worker's, shared)."""
    from scratchrnn.model import training_bytes
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    config, V, B, T = dict(cell="lstm", hidden=64, layers=2, dtype="float32"), 20, 9, 5
    extra = training_bytes({**config, "engine": "fast-split"}, V, B, T) - training_bytes({**config, "engine": "fast"},
                                                                                         V, B, T)
    assert extra == 4 * RNNLM(V, 64, 2, "lstm").num_parameters() > 0


@pytest.mark.skipif(mkl.load()[0] is None, reason="MKL not installed")
def test_the_memory_check_counts_what_each_process_packs_for_its_half(monkeypatch):
    """With MKL, each process packs W_hh and W_hh^T for its half: twice what the half here takes, byte for byte."""
    from scratchrnn.model import training_bytes
    config, V, B, T = dict(cell="lstm", hidden=64, layers=2, dtype="float32", engine="fast-split"), 20, 9, 5
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    plain = training_bytes(config, V, B, T)
    monkeypatch.setenv(mkl.VARIABLE, "mkl")
    packed = training_bytes(config, V, B, T) - plain
    m = RNNLM(V, 64, 2, "lstm", engine="fast-split")
    m.loss_and_grad(np.zeros((T, B), int), np.zeros((T, B), int), m.begin_state(B))
    layers = m.engine.inner.workspace(T, halves(B)[0]).layers
    assert packed == 2 * sum(p.storage.nbytes for layer in layers for p in (layer.W_hh_packed, layer.W_hhT_packed)) > 0
    m.engine.close()


def test_a_chunk_interrupted_here_ends_the_worker_so_no_answer_is_taken_for_the_next_chunks(rng, monkeypatch):
    """Ctrl-C inside the half computed here: the worker's answer to that chunk must not be read as the next one's."""
    V, H, B, T = 9, 8, 4, 5
    split = RNNLM(V, H, 1, "rnn", dtype="float64", engine="fast-split", seed=8)
    ref = RNNLM(V, H, 1, "rnn", dtype="float64", engine="reference", seed=8)
    X, Y = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    split.loss_and_grad(X, Y, split.begin_state(B))
    process = split.engine.worker[0][0]

    def interrupted(*chunk):
        raise KeyboardInterrupt
    monkeypatch.setattr(split.engine, "on_one_thread", interrupted)
    with pytest.raises(KeyboardInterrupt):
        split.loss_and_grad(X[::-1].copy(), Y, split.begin_state(B))      # another chunk, answered by the worker
    monkeypatch.undo()
    assert split.engine.worker[0] is None and process.poll() is not None
    assert_same_step(ref, split, X, Y, ref.begin_state(B), 1e-10)
    split.engine.close()


def test_ctrl_c_to_the_whole_process_group_saves_and_leaves_no_traceback(tmp_path):
    """A terminal's Ctrl-C reaches the worker too: it ignores it, the process that trains saves and says how to
    resume (exit 130), nothing prints a traceback, and the resume runs on."""
    import subprocess
    import sys
    args = ["--hidden", "64", "--layers", "2", "--engine", "fast-split", "--batch-size", "16", "--num-steps", "20",
            "--device", "cpu", "--log-every", "1", "--epochs", "30"]
    out = tmp_path / "stopped"
    with running("train", "--out", str(out), *args, start_new_session=True) as proc:
        read_until(proc.stdout, "epoch    1")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT): saved" in err and "Traceback" not in err
    _, manifest = load_checkpoint(out / "last.npz")
    assert 1 <= manifest["epoch"] < 30
    r = subprocess.run([sys.executable, "-m", "scratchrnn", "train", "--resume", str(out), "--epochs",
                        str(manifest["epoch"] + 1), "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
