"""Triton kernels, one module per op family. Imported lazily (only when a CUDA/interpreted launch happens)."""
