"""vidseg-spvos: triple sparse convolution on an STCN memory network (Lin, Chen, Yu, IEEE TIP 2023).

STCN (key encoder ResNet-50 → C_k = 64, value encoder ResNet-18 + CBAM fuser → C_v = 512, L2 memory read,
decoder, soft aggregation) with SpVOS's triple sparse convolutions (skip / reuse / compute, Gumbel-softmax gate)
in the query encoder, decoder and optionally the memory encoder, the sparsity objective with dynconv's
relaxation, and fully / semi-mixed / mixed sparse processing. Spec: ``docs/reference/vos.md`` §2.
"""

__version__ = "0.1.0"
