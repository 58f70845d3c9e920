"""The fast engine: the same mathematics as cells/ and output.py, arranged for speed.

What changes against the readable reference (and nothing else):

1. Hoisted GEMMs. Only H_{t-1} W_hh (forward) and dA_t W_hh^T (backward) depend on the previous
   step; everything else is done once per chunk over all T*B rows:
       Ax     = X W_xh + b_xh             (T*B, G*H)   one GEMM, or a row gather for one-hot input
       dW_hh  = H_prev^T dAh              (H, G*H)     one GEMM over the chunk
       dW_xh  = X^T dAx,  dX = dAx W_xh^T              one GEMM each (a row scatter for one-hot)
2. Fused gate math: one kernel per step per layer computes all gates and the new state (forward),
   and all gate gradients (backward): Numba on the CPU, our CUDA C on the GPU (`ops`).
3. Preallocated workspaces, reused for every chunk of the same shape: no allocation in the step,
   GEMMs write into their destination (`out=`), parameters are updated in place.
4. Softmax cross-entropy and its gradient in one pass; clipping and SGD in one pass over the flat
   gradient buffer.

Per step and layer: forward 1 GEMM + 1 fused kernel; backward 1 fused kernel + 1 GEMM.
"""
from types import SimpleNamespace

import numpy as np


class FastEngine:
    def __init__(self, model, ops, name):
        self.model, self.ops, self.name = model, ops, name
        self.xp = model.xp
        self.cell = model.cell_name
        self.relu = model.nonlinearity == "relu"
        self.ws = None

    # ------------------------------------------------------------------------------------------
    # Workspaces: allocated once per chunk shape (T, B)
    # ------------------------------------------------------------------------------------------

    def workspace(self, T, B):
        if self.ws is not None and self.ws.shape == (T, B):
            return self.ws
        m, xp = self.model, self.xp
        H, V, G, dt = m.num_hiddens, m.vocab_size, m.cell.GATES, m.dtype
        layers = []
        for _ in range(m.num_layers):
            L = SimpleNamespace(
                Ax=xp.empty((T, B, G * H), dt),           # input part of the gates, all steps
                Ah=xp.empty((B, G * H), dt),              # H_{t-1} W_hh, one step
                Hs=xp.empty((T + 1, B, H), dt),           # Hs[0] = H_0, Hs[t+1] = H_t
                Cs=xp.empty((T + 1, B, H), dt) if self.cell == "lstm" else None,
                gates=xp.empty((T, B, G * H), dt) if self.cell != "rnn" else None,
                Hn=xp.empty((T, B, H), dt) if self.cell == "gru" else None,
                dAx=xp.empty((T, B, G * H), dt),
            )
            L.dAh = xp.empty((T, B, G * H), dt) if self.cell == "gru" else L.dAx   # same for LSTM/RNN
            layers.append(L)
        self.ws = SimpleNamespace(
            shape=(T, B), layers=layers,
            logits=xp.empty((T * B, V), dt), row_loss=xp.empty(T * B, dt),
            dHs=[xp.empty((T, B, H), dt), xp.empty((T, B, H), dt)],     # gradient from above, two in turn
            dH_rec=xp.empty((B, H), dt), dC=xp.empty((B, H), dt), dH_skip=xp.empty((B, H), dt))
        if m.embedding_dim:
            D = m.embedding_dim
            self.ws.emb, self.ws.demb = xp.empty((T * B, D), dt), xp.empty((T * B, D), dt)
            self.ws.zero_bias = xp.zeros(D, dt)
        return self.ws

    # ------------------------------------------------------------------------------------------
    # Forward and backward of one chunk
    # ------------------------------------------------------------------------------------------

    def loss_and_grad(self, X, Y, state, dstate=None):
        """Same contract as RNNLM.loss_and_grad (the reference)."""
        m, xp, ops = self.model, self.xp, self.ops
        T, B = X.shape
        ws = self.workspace(T, B)
        ids = X.reshape(-1)
        H = m.num_hiddens

        # Forward, layer by layer.
        for k, L in enumerate(ws.layers):
            p = m.layer_params(k)
            Ax2d = L.Ax.reshape(T * B, -1)
            if k == 0 and m.embedding_dim:                       # Emb = E[X], then a GEMM like any layer
                ops.gather_rows_bias(m.params["E"], ids, ws.zero_bias, ws.emb)
                xp.matmul(ws.emb, p["W_xh"], out=Ax2d)
                Ax2d += p["b_xh"]
            elif k == 0:                                          # one-hot input: a row gather of W_xh
                ops.gather_rows_bias(p["W_xh"], ids, p["b_xh"], Ax2d)
            else:
                xp.matmul(ws.layers[k - 1].Hs[1:].reshape(T * B, H), p["W_xh"], out=Ax2d)
                Ax2d += p["b_xh"]
            L.Hs[0] = state[k][0]
            if self.cell == "lstm":
                L.Cs[0] = state[k][1]
            for t in range(T):
                xp.matmul(L.Hs[t], p["W_hh"], out=L.Ah)
                if self.cell == "lstm":
                    ops.lstm_forward(L.Ax[t], L.Ah, p["b_hh"], L.Cs[t], L.gates[t], L.Cs[t + 1], L.Hs[t + 1])
                elif self.cell == "gru":
                    ops.gru_forward(L.Ax[t], L.Ah, p["b_hh"], L.Hs[t], L.gates[t], L.Hn[t], L.Hs[t + 1])
                else:
                    ops.rnn_forward(L.Ax[t], L.Ah, p["b_hh"], L.Hs[t + 1], self.relu)
        new_state = [(L.Hs[T].copy(), L.Cs[T].copy()) if self.cell == "lstm" else (L.Hs[T].copy(),)
                     for L in ws.layers]

        # Output layer and loss; ws.logits becomes dloss/dlogits in place.
        H_top = ws.layers[-1].Hs[1:].reshape(T * B, H)
        xp.matmul(H_top, m.params["W_hq"], out=ws.logits)
        ws.logits += m.params["b_q"]
        ops.softmax_xent(ws.logits, Y.reshape(-1), ws.row_loss)
        loss = ws.row_loss.mean()
        xp.matmul(H_top.T, ws.logits, out=m.grads["W_hq"])
        ws.logits.sum(axis=0, out=m.grads["b_q"])
        dHs = ws.dHs[0]
        xp.matmul(ws.logits, m.params["W_hq"].T, out=dHs.reshape(T * B, H))

        # Backward, layer by layer from the top, each walking time backwards.
        dstate0 = [None] * m.num_layers
        flow = np.zeros((m.num_layers, T)) if m.trace_gradient_flow else None
        for k in reversed(range(m.num_layers)):
            L, p, g = ws.layers[k], m.layer_params(k), {n: m.grads[f"l{k}.{n}"] for n in ("W_xh", "W_hh", "b_xh", "b_hh")}
            dH_rec, dC, dH_skip = ws.dH_rec, ws.dC, ws.dH_skip
            if dstate is None:
                dH_rec.fill(0)
                dC.fill(0)
            else:
                dH_rec[...] = dstate[k][0]
                if self.cell == "lstm":
                    dC[...] = dstate[k][1]
            dH_skip.fill(0)
            for t in reversed(range(T)):
                if m.trace_gradient_flow:                     # ||dL/dH_t||, diagnostics only
                    dH = dHs[t] + dH_rec + (dH_skip if self.cell == "gru" else 0)
                    flow[k, t] = float(xp.linalg.norm(dH))
                if self.cell == "lstm":
                    ops.lstm_backward(dHs[t], dH_rec, dC, L.gates[t], L.Cs[t], L.Cs[t + 1], L.dAx[t])
                elif self.cell == "gru":
                    ops.gru_backward(dHs[t], dH_rec, dH_skip, L.gates[t], L.Hn[t], L.Hs[t], L.dAx[t], L.dAh[t])
                else:
                    ops.rnn_backward(dHs[t], dH_rec, L.Hs[t + 1], L.dAx[t], self.relu)
                xp.matmul(L.dAh[t], p["W_hh"].T, out=dH_rec)                # to H_{t-1}
            if self.cell == "gru":
                dH_rec += dH_skip
            dstate0[k] = (dH_rec.copy(), dC.copy()) if self.cell == "lstm" else (dH_rec.copy(),)

            dAx2d, dAh2d = L.dAx.reshape(T * B, -1), L.dAh.reshape(T * B, -1)
            xp.matmul(L.Hs[:T].reshape(T * B, H).T, dAh2d, out=g["W_hh"])   # one GEMM for the chunk
            dAh2d.sum(axis=0, out=g["b_hh"])
            dAx2d.sum(axis=0, out=g["b_xh"])
            if k == 0 and m.embedding_dim:
                xp.matmul(ws.emb.T, dAx2d, out=g["W_xh"])
                xp.matmul(dAx2d, p["W_xh"].T, out=ws.demb)              # dEmb, then rows into dE
                m.grads["E"].fill(0)
                ops.scatter_add_rows(m.grads["E"], ids, ws.demb)
            elif k == 0:
                g["W_xh"].fill(0)
                ops.scatter_add_rows(g["W_xh"], ids, dAx2d)
            else:
                xp.matmul(ws.layers[k - 1].Hs[1:].reshape(T * B, H).T, dAx2d, out=g["W_xh"])
                dHs = ws.dHs[(m.num_layers - k) % 2]
                xp.matmul(dAx2d, p["W_xh"].T, out=dHs.reshape(T * B, H))    # to the layer below
        if flow is not None:
            m.gradient_flow = flow
        return loss, new_state, dstate0

    def clip_and_sgd(self, lr, theta):
        return self.ops.clip_sgd(self.model.flat_params, self.model.flat_grads, lr,
                                 0.0 if theta is None else theta)
