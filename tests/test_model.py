import numpy as np
import pytest

from conftest import CELL_VARIANTS, VARIANT_IDS
from scratchrnn.cells import CELLS
from scratchrnn.checkpoint import load_weights, save_weights
from scratchrnn.errors import CheckpointError, ConfigError
from scratchrnn.gradcheck import relative_error
from scratchrnn.model import RNNLM



@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_state_dict_names_and_layouts(cell, nonlinearity):
    m = RNNLM(28, 16, 2, cell, nonlinearity=nonlinearity)
    G = CELLS[cell].GATES
    d = m.state_dict()
    assert list(d) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                       "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1",
                       "fc.weight", "fc.bias"]
    assert d["rnn.weight_ih_l0"].shape == (G * 16, 28)
    assert d["rnn.weight_ih_l1"].shape == (G * 16, 16)
    assert d["rnn.weight_hh_l1"].shape == (G * 16, 16)
    assert d["fc.weight"].shape == (28, 16) and d["fc.bias"].shape == (28,)
    assert all(isinstance(v, np.ndarray) for v in d.values())


@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_weights_round_trip_through_npz(tmp_path, cell, nonlinearity, rng):
    a = RNNLM(12, 8, 3, cell, nonlinearity=nonlinearity, seed=1)
    b = RNNLM(12, 8, 3, cell, nonlinearity=nonlinearity, seed=2)
    path = tmp_path / "w.npz"
    save_weights(a, path)
    load_weights(b, path)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    X = rng.integers(0, 12, (5, 2))
    np.testing.assert_array_equal(a.forward(X, a.begin_state(2))[0], b.forward(X, b.begin_state(2))[0])
    assert not list(tmp_path.glob(".*tmp"))                      # no temporary file left behind


def test_load_errors_name_the_key(tmp_path):
    m = RNNLM(12, 8, 2, "lstm")
    before = m.flat_params.copy()
    d = m.state_dict()
    d.pop("rnn.bias_hh_l1")
    with pytest.raises(CheckpointError, match="missing key 'rnn.bias_hh_l1'"):
        m.load_state_dict(d)
    d = m.state_dict()
    d["rnn.weight_hh_l0"] = np.zeros((32, 9))
    with pytest.raises(CheckpointError, match=r"'rnn.weight_hh_l0' have shape \(32, 9\), this model needs \(32, 8\)"):
        m.load_state_dict(d)
    d = m.state_dict()
    d["rnn.weight_ih_l2"] = np.zeros((32, 8))
    with pytest.raises(CheckpointError, match="unexpected key 'rnn.weight_ih_l2'"):
        m.load_state_dict(d)
    np.testing.assert_array_equal(m.flat_params, before)       # a failed load changes nothing
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(m, tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    save_weights(m, bad)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_weights(m, bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(vocab_size=0), "vocab size"), (dict(num_hiddens=-3), "hidden size"),
    (dict(num_layers=0), "number of layers"), (dict(cell="transformer"), "unknown cell"),
    (dict(nonlinearity="sigmoid"), "nonlinearity 'sigmoid' is not one of the lstm cell's: tanh"),
    (dict(cell="gru", nonlinearity="relu"), "nonlinearity 'relu' is not one of the gru cell's"),
    (dict(init="xavier"), "unknown init"),
    (dict(engine="auto"), "unknown engine 'auto'; choose one of reference, fast"),
    (dict(dtype="float16"), "unknown dtype"),
])
def test_bad_model_config(kwargs, message):
    args = dict(vocab_size=10, num_hiddens=4, num_layers=1)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        RNNLM(**args)


def test_pytorch_initialisation_and_book_initialisation():
    m = RNNLM(28, 100, 2, "lstm", init="pytorch")
    assert np.abs(m.flat_params).max() <= 0.1 and np.abs(m.flat_params).max() > 0.09
    b = RNNLM(28, 100, 1, "rnn", init="normal")
    assert np.all(b.params["l0.b_xh"] == 0) and np.all(b.params["b_q"] == 0)
    assert 0.008 < b.params["l0.W_hh"].std() < 0.012


@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_float32_and_float64_agree(cell, nonlinearity, engine, rng):
    m32 = RNNLM(15, 12, 2, cell, nonlinearity=nonlinearity, dtype="float32", engine=engine)
    m64 = RNNLM(15, 12, 2, cell, nonlinearity=nonlinearity, dtype="float64", engine=engine)
    m64.load_state_dict(m32.state_dict())
    X, Y = rng.integers(0, 15, (6, 4)), rng.integers(0, 15, (6, 4))
    l32, _, _ = m32.loss_and_grad(X, Y, m32.begin_state(4))
    l64, _, _ = m64.loss_and_grad(X, Y, m64.begin_state(4))
    assert abs(float(l32) - float(l64)) < 1e-6 * float(l64)
    for name in m32.grads:
        assert m32.grads[name].dtype == np.float32
        assert relative_error(m32.grads[name], m64.grads[name]) < 1e-5, name


@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_same_numbers_as_pytorch(cell, nonlinearity, rng):
    """Our state_dict loaded into torch.nn.{RNN,GRU,LSTM} + nn.Linear gives the same logits, and
    torch's autograd gives the same gradients: the gate order and the GRU's reset-gate placement
    really are PyTorch's."""
    torch = pytest.importorskip("torch")
    V, H, L, T, B = 10, 7, 2, 5, 3
    m = RNNLM(V, H, L, cell, nonlinearity=nonlinearity, dtype="float64", engine="reference")
    kind = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    net = kind(V, H, L, **extra).double()
    fc = torch.nn.Linear(H, V).double()
    d = m.state_dict()
    net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in d.items() if k.startswith("rnn.")})
    fc.load_state_dict({"weight": torch.from_numpy(d["fc.weight"]), "bias": torch.from_numpy(d["fc.bias"])})
    X, Y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    out, _ = net(torch.nn.functional.one_hot(torch.from_numpy(X), V).double())
    logits = fc(out.reshape(T * B, H))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(Y.reshape(-1)))
    loss.backward()
    ours, _, _ = m.loss_and_grad(X, Y, m.begin_state(B))
    assert abs(float(ours) - loss.item()) < 1e-12
    np.testing.assert_allclose(m.forward(X, m.begin_state(B))[0], logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = {name: p.grad.numpy() for name, p in net.named_parameters()}
    for k in range(L):
        np.testing.assert_allclose(m.grads[f"l{k}.W_xh"].T, grads[f"weight_ih_l{k}"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.grads[f"l{k}.W_hh"].T, grads[f"weight_hh_l{k}"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.grads[f"l{k}.b_hh"], grads[f"bias_hh_l{k}"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.grads["W_hq"].T, fc.weight.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_one_hot_times_a_matrix_is_a_row_lookup(rng):
    from scratchrnn.embedding import embedding_backward, embedding_forward
    E, X = rng.standard_normal((9, 4)), rng.integers(0, 9, (5, 3))
    one_hot = np.eye(9)[X]                                                   # (T, B, V)
    np.testing.assert_allclose(embedding_forward(E, X), one_hot @ E, rtol=0, atol=1e-15)
    dEmb = rng.standard_normal((5, 3, 4))
    np.testing.assert_allclose(embedding_backward(E, X, dEmb),
                               one_hot.reshape(-1, 9).T @ dEmb.reshape(-1, 4), rtol=1e-12, atol=1e-14)


def test_embedding_model_equals_pytorch(rng):
    torch = pytest.importorskip("torch")
    m = RNNLM(10, 6, 2, "lstm", dtype="float64", engine="fast", embedding_dim=4)
    d = m.state_dict()
    assert list(d)[0] == "embedding.weight" and d["embedding.weight"].shape == (10, 4)
    emb, net, fc = torch.nn.Embedding(10, 4).double(), torch.nn.LSTM(4, 6, 2).double(), torch.nn.Linear(6, 10).double()
    emb.load_state_dict({"weight": torch.from_numpy(d["embedding.weight"])})
    net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in d.items() if k.startswith("rnn.")})
    fc.load_state_dict({"weight": torch.from_numpy(d["fc.weight"]), "bias": torch.from_numpy(d["fc.bias"])})
    X, Y = rng.integers(0, 10, (5, 3)), rng.integers(0, 10, (5, 3))
    out, _ = net(emb(torch.from_numpy(X)))
    loss = torch.nn.functional.cross_entropy(fc(out.reshape(15, 6)), torch.from_numpy(Y.reshape(-1)))
    loss.backward()
    ours, _, _ = m.loss_and_grad(X, Y, m.begin_state(3))
    assert abs(float(ours) - loss.item()) < 1e-12
    np.testing.assert_allclose(m.grads["E"], emb.weight.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("theta", [1e-3, 1e3], ids=["clipped", "unclipped"])
def test_one_training_step_equals_pytorch(cell, nonlinearity, theta, rng):
    """Forward, backward, global-norm clipping and SGD of one step (fast engine, float32) against the
    same step in PyTorch (scratchrnn.torch_baseline.TorchStep, used by the benchmarks) from the same
    weights: the same loss and the same updated weights."""
    torch = pytest.importorskip("torch")
    from scratchrnn.torch_baseline import TorchStep
    V, H, L, T, B = 12, 9, 2, 6, 4
    m = RNNLM(V, H, L, cell, nonlinearity=nonlinearity, engine="fast", seed=5)
    step = TorchStep(torch, cell, V, H, L, lr=0.7, theta=theta, nonlinearity=nonlinearity)
    d = m.state_dict()
    step.net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in d.items() if k.startswith("rnn.")})
    step.fc.load_state_dict({"weight": torch.from_numpy(d["fc.weight"]), "bias": torch.from_numpy(d["fc.bias"])})
    X, Y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    loss, _, _ = m.loss_and_grad(X, Y, m.begin_state(B))
    m.clip_and_sgd(0.7, theta)
    theirs = step(torch.from_numpy(X), torch.from_numpy(Y.reshape(-1)))
    assert float(loss) == pytest.approx(theirs.item(), rel=1e-6)
    after = m.state_dict()
    for name, p in step.net.named_parameters():
        np.testing.assert_allclose(after["rnn." + name], p.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after["fc.weight"], step.fc.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_torch_baseline_says_which_code_pytorch_runs_and_can_turn_onednn_off(cell, rng):
    """TorchStep.top_ops is PyTorch's own profile of its step (the benchmarks print it): its LSTM runs oneDNN's fused
    RNN primitive, one call per layer and direction a step, where oneDNN is built in; its GRU and RNN, and its LSTM
    with fused_rnn=False, run a matrix product per time step. Both ways compute the same step."""
    torch = pytest.importorskip("torch")
    from scratchrnn.torch_baseline import FUSED_RNN_OPS, TorchStep
    V, H, L, T, B = 12, 16, 2, 6, 4
    X, Y = torch.from_numpy(rng.integers(0, V, (T, B))), torch.from_numpy(rng.integers(0, V, T * B))
    losses = []
    for fused_rnn in (True, False):
        torch.manual_seed(0)
        step = TorchStep(torch, cell, V, H, L, fused_rnn=fused_rnn)
        losses.append(step(X, Y).item())
        ops = step.top_ops(X, Y, steps=2, count=3)
        names = [name for name, _, _ in ops]
        shares = [share for _, share, _ in ops]
        assert len(ops) == 3 and all(name.startswith("aten::") for name in names)
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1
        fused = [(name, calls) for name, _, calls in ops if name in FUSED_RNN_OPS]
        if cell == "lstm" and fused_rnn and torch.backends.mkldnn.is_available():
            assert fused and all(calls == L for _, calls in fused), ops
        else:
            assert not fused, ops
            products = step.top_ops(X, Y, steps=2, count=50)
            matmuls = sum(calls for name, _, calls in products if name in ("aten::mm", "aten::addmm"))
            assert matmuls >= 2 * T * L, products
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.parametrize("init", ["pytorch", "normal"])
def test_torch_baseline_starts_from_the_same_scheme_as_ours(init):
    """benchmarks/book_run_torch.py compares perplexity curves, so its PyTorch model must start from our
    initialisation scheme: the same parameter names, zero biases under 'normal', and the same spread."""
    torch = pytest.importorskip("torch")
    from scratchrnn.torch_baseline import TorchStep
    torch.manual_seed(0)
    step = TorchStep(torch, "rnn", 28, 512, 1, init=init)
    theirs = {"rnn." + k: v.detach().numpy() for k, v in step.net.state_dict().items()}
    theirs.update({"fc." + k: v.detach().numpy() for k, v in step.fc.state_dict().items()})
    ours = RNNLM(28, 512, 1, "rnn", init=init, seed=0).state_dict()
    assert sorted(theirs) == sorted(ours)
    for name in ours:
        assert theirs[name].shape == ours[name].shape, name
        if init == "normal" and "bias" in name:
            assert not theirs[name].any() and not ours[name].any(), name
        elif ours[name].size >= 500:                  # a spread measured on enough samples to compare
            assert theirs[name].std() == pytest.approx(ours[name].std(), rel=0.1), name
