"""SeqFormer (Wu et al., ECCV 2022): video instance segmentation with query decomposition.

Modules: :mod:`.encoder` (multi-scale deformable encoder), :mod:`.decoder` (query-decomposition decoder),
:mod:`.mask_head` (mask branch + dynamic mask head), :mod:`.model` (the network), :mod:`.matcher`,
:mod:`.criterion`, :mod:`.inference`, :mod:`.module` (LightningModule), :mod:`.cli`.
"""

__version__ = "0.1.0"
