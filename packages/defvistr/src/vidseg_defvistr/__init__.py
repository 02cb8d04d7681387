"""vidseg-defvistr: Deformable VisTR (Yarram et al., ICASSP 2022) and its parent VisTR (Wang et al., CVPR 2021).

VisTR's instance-sequence pipeline (3-D sine positions, frame-major instance queries, sequence matching,
VisTR mask head) with spatio-temporal deformable attention (``STDeformAttn``, M=8, K=32) as encoder
self-attention and decoder cross-attention; ``attention: dense`` gives the original VisTR.
Spec: ``docs/reference/vis.md`` §2.
"""

__version__ = "0.1.0"
