// Softmax cross-entropy and its gradient in one pass, one thread per row (V is small: the vocabulary).
// NumPy twin: scratchrnn/output.py.
#include "common.cuh"

// row_loss[r] = log sum_v exp(logits[r,v] - m) - (logits[r,y_r] - m),  m = max_v logits[r,v]
// logits[r] <- (softmax(logits[r]) - onehot(y_r)) / N        (the gradient of the mean loss)
extern "C" __global__ void softmax_xent(real* logits, const long long* y, real* row_loss, int N, int V) {
    long long r = thread_index();
    if (r >= N) return;
    real* z = logits + r * V;
    real m = z[0];
    for (int v = 1; v < V; ++v) m = z[v] > m ? z[v] : m;
    real s = real(0);
    for (int v = 0; v < V; ++v) s += exp(z[v] - m);
    long long target = y[r];
    row_loss[r] = log(s) - (z[target] - m);
    for (int v = 0; v < V; ++v) z[v] = exp(z[v] - m) / s / real(N);
    z[target] -= real(1) / real(N);
}
