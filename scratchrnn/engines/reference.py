"""The reference engine: the readable cells of scratchrnn/cells/, layer after layer, then the output layer.

    tokens X (T, B) --layer 0--> Hs_0 (T, B, nh) --layer 1--> ... --> Hs_{L-1} --dense--> logits (T*B, V)

Every array of the forward is kept in a cache for the backward, which walks the layers from the top,
each through time from the last step (cells/*.backward). Nothing here is arranged for speed: this is the
mathematics every fast path is held to.
"""
import numpy as np

from .. import output
from ..backend import numpy_blas_threads_change_sums
from ..dropout import dropout_backward, dropout_forward
from ..embedding import embedding_backward, embedding_forward
from .clipping import clipping_threshold


class ReferenceEngine:
    name = "reference"

    def __init__(self, model):
        self.model = model

    def forward_with_cache(self, X, state, masks=None):
        """X: (T, B) token ids; state from `begin_state`; masks: dropout masks (L, T, B, nh) or None.
        -> logits (T*B, V), final state, cache."""
        m = self.model
        layer_input, caches, new_state = X, [], []
        if m.embedding_dim:
            layer_input = embedding_forward(m.params["E"], X)               # (T, B, D)
        for k in range(m.num_layers):
            Hs, s, cache = m.cell.forward(m.layer_params(k), layer_input, state[k], **m.step_options)
            caches.append(cache)
            new_state.append(s)
            layer_input = Hs if masks is None else dropout_forward(Hs, masks[k])    # (T, B, nh)
        T, B, nh = layer_input.shape
        H_top = layer_input.reshape(T * B, nh)                             # time-major rows
        logits = output.dense_forward(H_top, m.params["W_hq"], m.params["b_q"])
        return logits, new_state, (caches, H_top, (T, B), X, masks)

    def forward(self, X, state):
        logits, new_state, _ = self.forward_with_cache(X, state)
        return logits, new_state

    def backward(self, cache, dlogits, dstate=None):
        """Fill model.grads from dloss/dlogits; dstate: gradient reaching the final state (None: zero).
        Returns the gradient with respect to the initial state."""
        m = self.model
        caches, H_top, (T, B), X, masks = cache
        dH, dW_hq, db_q = output.dense_backward(H_top, m.params["W_hq"], dlogits)
        m.grads["W_hq"][...] = dW_hq
        m.grads["b_q"][...] = db_q
        dHs = dH.reshape(T, B, m.num_hiddens)
        dstate0 = [None] * m.num_layers
        traces = [[] if m.trace_gradient_flow else None for _ in range(m.num_layers)]
        for k in reversed(range(m.num_layers)):
            if masks is not None:                                           # through layer k's dropout
                dHs = dropout_backward(dHs, masks[k])
            dX, dstate0[k], grads = m.cell.backward(
                m.layer_params(k), dHs, caches[k], None if dstate is None else dstate[k], trace=traces[k])
            for name, g in grads.items():
                m.grads[f"l{k}.{name}"][...] = g
            dHs = dX                                                        # to the layer below
        if m.embedding_dim:
            m.grads["E"][...] = embedding_backward(m.params["E"], X, dHs)
        if m.trace_gradient_flow:
            m.gradient_flow = np.array([trace[::-1] for trace in traces])   # (L, T), time forwards
        return dstate0

    def loss_and_grad(self, X, Y, state, dstate=None, masks=None, state_grad=True):
        logits, new_state, cache = self.forward_with_cache(X, state, masks)
        y = Y.reshape(-1)                                                   # time-major, as logits
        loss, P = output.softmax_cross_entropy(logits, y)
        dstate0 = self.backward(cache, output.softmax_cross_entropy_backward(P, y), dstate)
        return loss, new_state, dstate0 if state_grad else None             # (computed all the same here)

    def update(self, optimizer, lr, theta):
        """Global-norm clipping (the rule of `clipping_threshold`), then the optimiser's update (its module's
        `update`, in NumPy or CuPy), over the flat buffers. Returns the gradient norm before clipping."""
        m, xp = self.model, self.model.xp
        norm = xp.sqrt((m.flat_grads * m.flat_grads).sum())
        if theta is None:
            scale = 1.0
        else:
            theta = clipping_threshold(theta)
            # theta / norm where norm > theta, else exactly 1 (a NaN norm too, as in the kernels); the
            # maximum keeps the division away from a zero norm
            scale = xp.where(norm > theta, theta / xp.maximum(norm, theta), 1.0)
        optimizer.t += 1
        optimizer.rule.update(m.flat_params, m.flat_grads, scale, *optimizer.state.values(), t=optimizer.t, lr=lr,
                              **{k: optimizer.hyper[k] for k in optimizer.rule.DEFAULTS})
        return norm

    def threads_change_sums(self, then, now, batch_size):
        """NumPy's matmul on the CPU: other sums on other threads only where its BLAS is MKL."""
        return then != now and self.model.xp is np and numpy_blas_threads_change_sums()
