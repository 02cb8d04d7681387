"""vidseg-stt: Sparse Temporal Transformer for video semantic segmentation (Li et al., ACM MM 2021).

A shared per-frame encoder (PSPNet-style: dilated ResNet + pyramid pooling, TDNet's split), the STT module
(NSM query selection + expanding-window key selection + one post-LN temporal transformer block) and an
FCN decoder. See ``docs/reference/vss.md`` §1 for the spec and the choices where the paper is silent.
"""

__version__ = "0.1.0"
