"""Released VisTR checkpoints → ``DefVisTRModule`` with ``attention: dense`` (the key renames, as data).

Releases (github.com/Epiphqny/VisTR, README "Models"): ``vistr_r50.pth`` (ResNet-50, 36.2 mask AP on YouTube-VIS
2019) and ``vistr_r101.pth`` (ResNet-101, 40.1); both are the ``VisTRsegm`` model of ``models/segmentation.py``
saved as ``{"model": state_dict}`` (``main.py``), 36 frames × 10 instances (``--num_queries 360``), C = 384.
Build ours with ``-c experiments/defvistr/ytvis19.yaml -c experiments/defvistr/vistr_dense.yaml`` (plus
``--model.backbone resnet101.tv_in1k`` for R101); ``vidseg weights import defvistr vistr_r50.pth --out … -c …`` or
``--model.init_weights vistr_r50.pth`` load them.

Every key maps (renames only; shapes equal): torchvision's ResNet ``vistr.backbone.0.body.*`` is timm's
``model.backbone.body.*`` (same module names; both frozen BatchNorm, weight/bias/running stats, no step counter);
the transformer's ``nn.MultiheadAttention`` keys (``in_proj_weight``, ``in_proj_bias``, ``out_proj.*``) are ours
unchanged; VisTR's flat FFN layers (``linear1``, ``linear2`` and the last norm) are our ``ffn.*``; the decoder's
``multihead_attn`` is our ``cross_attn``; the 3-D instance head's ``nn.Sequential`` indices move under ``layers``.
Nothing is dropped and nothing is fresh (the deformable model's ``STDeformAttn`` and reference points have no
counterpart: a VisTR checkpoint is for ``attention: dense`` only).
"""

from __future__ import annotations

from vidseg_common.weights import WeightRules

_LAYER = r"vistr\.transformer\.(encoder|decoder)\.layers\.(\d+)\."
VISTR = WeightRules(
    name="vistr",
    description="Epiphqny/VisTR vistr_r50.pth / vistr_r101.pth (VisTRsegm; our attention: dense)",
    rename=(
        (r"vistr\.backbone\.0\.body\.(.+)", r"model.backbone.body.\1"),
        (_LAYER + r"linear([12])\.(weight|bias)", r"model.transformer.\1_layers.\2.ffn.linear\3.\4"),
        (r"vistr\.transformer\.encoder\.layers\.(\d+)\.norm2\.(.+)",
         r"model.transformer.encoder_layers.\1.ffn.norm.\2"),
        (r"vistr\.transformer\.decoder\.layers\.(\d+)\.norm3\.(.+)",
         r"model.transformer.decoder_layers.\1.ffn.norm.\2"),
        (r"vistr\.transformer\.decoder\.layers\.(\d+)\.multihead_attn\.(.+)",
         r"model.transformer.decoder_layers.\1.cross_attn.\2"),
        (_LAYER + r"(.+)", r"model.transformer.\1_layers.\2.\3"),
        (r"vistr\.transformer\.decoder\.norm\.(.+)", r"model.transformer.decoder_norm.\1"),
        (r"vistr\.(.+)", r"model.\1"),
        (r"insmask_head\.(\d+)\.(.+)", r"model.insmask_head.layers.\1.\2"),
        (r"(bbox_attention|mask_head)\.(.+)", r"model.\1.\2"),
    ),
)
RULES = {"vistr": VISTR}
