"""vidseg-sstvos: Sparse Spatiotemporal Transformers for semi-supervised VOS (Duke et al., CVPR 2021).

Per-frame CNN embedding → τ-frame temporal buffer → L sparse spatio-temporal attention layers (grid, local,
strided, local-strided) → per-layer causal object affinities (Eq. 4) → a CFBI-style collaborative ensembler
→ per-object logits. Only a grid-attention CUDA op was ever released, so the model is rebuilt from the paper,
the released config defaults and CFBI's public inference code (``docs/reference/vos.md`` §1).
"""

__version__ = "0.1.0"
