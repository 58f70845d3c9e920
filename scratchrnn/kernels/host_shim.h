// Build a .cu kernel file for the host (g++), to run and test it without a GPU.
// Kernels become plain functions; the CUDA built-ins they read (threadIdx, blockIdx, blockDim,
// gridDim) become variables that the launch loop below sets before calling each "thread" in turn.
// Valid because our kernels never synchronise threads or share memory (see common.cuh).
#pragma once
#include <algorithm>
#include <cmath>
using std::exp; using std::fmin; using std::log; using std::min; using std::pow; using std::sqrt; using std::tanh;

struct dim3 { unsigned x, y, z; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline

// One thread at a time, so an atomic add is a plain add.
inline double atomicAdd(double* address, double value) { double old = *address; *address += value; return old; }
inline float atomicAdd(float* address, float value) { float old = *address; *address += value; return old; }

// kernel<<<grid, block>>>(args) as loops over every block and every thread.
#define SCRATCHRNN_HOST_LAUNCH(grid, block, call)                                                   \
    gridDim = (grid); blockDim = (block);                                                           \
    for (blockIdx.z = 0; blockIdx.z < gridDim.z; ++blockIdx.z)                                      \
    for (blockIdx.y = 0; blockIdx.y < gridDim.y; ++blockIdx.y)                                      \
    for (blockIdx.x = 0; blockIdx.x < gridDim.x; ++blockIdx.x)                                      \
    for (threadIdx.z = 0; threadIdx.z < blockDim.z; ++threadIdx.z)                                  \
    for (threadIdx.y = 0; threadIdx.y < blockDim.y; ++threadIdx.y)                                  \
    for (threadIdx.x = 0; threadIdx.x < blockDim.x; ++threadIdx.x)                                  \
        call
