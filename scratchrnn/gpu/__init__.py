"""The GPU path: our CUDA kernels (scratchrnn/kernels/*.cu), loaded by modules.py, launched by ops.py."""
