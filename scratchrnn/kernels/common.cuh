// Shared by every kernel. Each .cu file is compiled twice, with SCRATCHRNN_REAL = float and = double
// (one CuPy RawModule, or one host library, per type); `real` is that type.
// Threads: one per output element, 1-D grid: idx = blockIdx.x * blockDim.x + threadIdx.x. A cell's step
// kernel has one thread per (b, j) of its (B, nh) state and takes the sizes B and nh as its last two ints.
// No kernel uses __syncthreads or shared memory, so running the threads one after another on the
// host (host_shim.h) computes exactly what the GPU computes.
#pragma once
#ifndef SCRATCHRNN_REAL
#define SCRATCHRNN_REAL float
#endif
typedef SCRATCHRNN_REAL real;

// sigma(x) = (1 + tanh(x/2)) / 2: never overflows; the same formula as cells/common.py.
__device__ __forceinline__ real sigmoid(real x) { return real(0.5) * (tanh(real(0.5) * x) + real(1)); }

__device__ __forceinline__ long long thread_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
