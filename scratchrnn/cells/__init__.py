"""The three recurrent cells: each equation has one home, its cell module.

Naming key (llm.c style), used in every shape comment of the package. A letter is either a size or an
array, never both:

    sizes    B   batch: sequences read side by side      T   time steps of a chunk
             V   vocabulary                              L   layers
             G   gate blocks of a cell (RNN 1, GRU 3, LSTM 4)
             nh  hidden units of a layer                 ni  inputs of a layer (V, D or nh)
             D   embedding size
    arrays   X inputs, Y targets, H hidden state, C memory cell, A gate pre-activations, I F O R Z gates,
             C_tilde, N candidates, W_* weights, b_* biases, E embedding, P probabilities; d* gradients

Every cell module holds, top to bottom: its equations and the derivation of its backward (docstring),
the facts an engine needs, `step_forward` and `step_backward` (one time step, NumPy or CuPy), then the
chunk-level `forward` and `backward` (the BPTT loop a student reads), which call the step functions.

    GATES                   G, the number of nh-wide blocks in W_xh, W_hh, b_xh, b_hh (PyTorch's order)
    STATE                   names of the recurrent state arrays, each (B, nh): ("H",) or ("H", "C")
    SAVED                   arrays step_forward keeps for step_backward: name -> width in units of nh
    CARRIED                 gradients step_backward carries from step t+1 to step t, besides dH_rec:
                            name -> the state they flow into
    SHARED_BLOCKS           (a cell whose step_backward writes dAx and dAh, not one dA) how many blocks,
                            from the first, dAh has in common with dAx: their bias gradients are the same
    TORCH_MODULE            the torch.nn module with the same equations (for comparisons only)
    NONLINEARITIES          what `nonlinearity` may be for this cell
    FORWARD_KERNEL, BACKWARD_KERNEL   the names of the fused twins of the step functions, in
                            engines/numba_kernels.py and in kernels/<cell>.cu
    zero_state(B, nh, xp, dtype), step_forward, step_backward, forward, backward

The step functions have the split of work of the fused kernels: the input part of the gates, Ax = X_t W_xh
+ b_xh, is computed for the whole chunk at once; the recurrent part, Ah = H_{t-1} W_hh, by one GEMM per
step; b_hh is added inside the step. They write their results into the arrays they are given, as the
kernels do, so a kernel and its step function are called with the very same arguments (the tests do so).
Their parameters are named so that an engine can bind them to its buffers by name (see `step_shapes`):

    Ax Ah b_hh dA dAx dAh    (B, G*nh) or (G*nh,)        H C, H_prev C_prev        state at t, at t-1
    dH_above                 dL/dH_t from the layer above     dH_rec   dA_{t+1} W_hh^T: from step t+1
    a name of SAVED or CARRIED, or a step option (`relu`)

Parameters `p` of one layer (our names; PyTorch's at the boundary, see model.py):
    W_xh (ni, G*nh)   W_hh (nh, G*nh)   b_xh (G*nh,)   b_hh (G*nh,)

To add a cell: write its module here (this layout, step functions included) and add it to CELLS; write
its two Numba kernels in engines/numba_kernels.py and its .cu file in kernels/, with the step functions'
names and argument order. The engines, the GPU launchers, the self-test and the tests find everything
else on the module.
"""
import inspect

from . import gru, lstm, rnn

CELLS = {"rnn": rnn, "gru": gru, "lstm": lstm}


def step_shapes(cell, B, nh):
    """The shape of every array a step function of `cell` takes, by parameter name."""
    G = cell.GATES
    shapes = {name: (B, G * nh) for name in ("Ax", "Ah", "dA", "dAx", "dAh")}
    shapes.update(b_hh=(G * nh,), dH_above=(B, nh), dH_rec=(B, nh))
    for name in cell.STATE:
        shapes[name] = shapes[name + "_prev"] = (B, nh)
    for name, width in cell.SAVED.items():
        shapes[name] = (B, width * nh)
    for name in cell.CARRIED:
        shapes[name] = (B, nh)
    return shapes


def step_options(cell, nonlinearity):
    """The step functions' options for a nonlinearity: relu=True for the ReLU RNN (and only there)."""
    return {"relu": nonlinearity == "relu"} if "relu" in inspect.signature(cell.step_forward).parameters else {}
