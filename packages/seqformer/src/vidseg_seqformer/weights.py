"""Released checkpoints that load into :class:`~vidseg_seqformer.module.SeqFormerModule` (``--model.init_weights``,
``vidseg weights import seqformer``), as declarative key tables (:class:`~vidseg_common.weights.WeightRules`).

Releases:

* ``seqformer``: the SeqFormer model zoo of github.com/wjf5203/SeqFormer (``SeqFormer_r50`` / ``SeqFormer_r101``
  ``.pth``, state_dict under ``model``; build with ``backbone: resnet50`` / ``resnet101``). Keys: ``detr.*`` (the
  Deformable DETR part, torchvision ResNet with FrozenBatchNorm2d under ``detr.backbone.0.body``), ``controller.*``
  (the dynamic mask head's parameter generator) and ``mask_head.*`` (``MaskHeadSmallConv``). Every tensor of the
  model is loaded; two groups of the file are dropped:

  - ``detr.transformer.decoder.bbox_embed.*``: the very tensors of ``detr.bbox_embed.*`` (the released code
    registers the box MLPs on the model and again on the decoder, for box refinement), loaded from there;
  - ``detr.transformer.encoder.layers.*.self_attn.output_proj_box.*``: the released ``MSDeformAttn`` class creates a
    box output projection in every encoder layer too, where it is never used (encoder mode).

* ``seqformer_coco``: SeqFormer's own COCO stage-1 weights (the README's "Pretrain" column, ``weights/
  r50_weight.pth``: SeqFormer layout, COCO class head). As the released ``main.py --pretrain_weights`` does, the
  class heads ``detr.class_embed.*`` are dropped and ours start fresh; the rest is the ``seqformer`` table.

* ``deformable_detr``: a Deformable DETR checkpoint of github.com/fundamentalvision/Deformable-DETR with iterative
  box refinement (``r50_deformable_detr_plus_iterative_bbox_refinement``, COCO, no ``detr.`` prefix), the layout
  SeqFormer's stage 1 starts from. Loaded: backbone, input projections, query embeddings, level embedding, initial
  reference points, the encoder, and per decoder layer the instance-query half (self-attention, deformable
  cross-attention, norms, FFN) and the box MLPs. Dropped: the duplicate ``transformer.decoder.bbox_embed.*`` (as
  above) and the COCO class heads ``class_embed.*`` (91 logits; SeqFormer deletes them). Fresh (SeqFormer's own
  parts, each with its reason in :data:`DEFORMABLE_DETR`): the box-query branch of every decoder layer
  (``self_attn_box``, ``norm_self_box``, ``output_proj_box``, ``norm_cross_box``, ``ffn_box``), the temporal
  aggregation weights ``time_attention_weights``, the mask branch and dynamic mask head, and the class heads.

Name changes (all tables): ``detr.`` is removed and ``model.`` put first; torchvision's ``backbone.0.body`` is
timm's ``backbone.body`` (same ResNet names); ``transformer.`` goes (``level_embed``, ``reference_points``,
``encoder``, ``decoder``); the box MLPs live on our decoder (``decoder.bbox_embed``); decoder layer names:
``norm1``→``norm_cross``, ``norm2``→``norm_self``, ``linear1/linear2/norm3``→``ffn.linear1/linear2/norm`` (and the
``_box`` twins → ``*_box``), ``cross_attn.output_proj_box``→``output_proj_box``; ``controller``→
``mask_head.controller``; ``mask_head.lay1..4 / dcn``→``mask_branch.lay1..4 / fuse``. The encoder layers keep
Deformable DETR's flat FFN names (``linear1``, ``linear2``, ``norm2``).
"""

from __future__ import annotations

from vidseg_common.weights import WeightRules


def _renames(prefix: str) -> tuple[tuple[str, str], ...]:
    """The key renames of the released Deformable DETR / SeqFormer layout (``prefix``: ``detr\\.`` or none)."""
    layer = rf"{prefix}transformer\.decoder\.layers\.(\d+)\."
    ours = r"model.decoder.layers.\1."
    return (
        (rf"{prefix}backbone\.0\.body\.(.+)", r"model.backbone.body.\1"),
        (rf"{prefix}transformer\.(level_embed|reference_points\..+)", r"model.\1"),
        (rf"{prefix}transformer\.encoder\.layers\.(.+)", r"model.encoder.layers.\1"),
        (layer + r"cross_attn\.output_proj_box\.(.+)", ours + r"output_proj_box.\2"),
        (layer + r"(cross_attn|self_attn|self_attn_box|time_attention_weights)\.(.+)", ours + r"\2.\3"),
        (layer + r"norm1\.(.+)", ours + r"norm_cross.\2"),
        (layer + r"norm1_box\.(.+)", ours + r"norm_cross_box.\2"),
        (layer + r"norm2\.(.+)", ours + r"norm_self.\2"),
        (layer + r"norm2_box\.(.+)", ours + r"norm_self_box.\2"),
        (layer + r"(linear[12])\.(.+)", ours + r"ffn.\2.\3"),
        (layer + r"norm3\.(.+)", ours + r"ffn.norm.\2"),
        (layer + r"(linear[12])_box\.(.+)", ours + r"ffn_box.\2.\3"),
        (layer + r"norm3_box\.(.+)", ours + r"ffn_box.norm.\2"),
        (rf"{prefix}bbox_embed\.(.+)", r"model.decoder.bbox_embed.\1"),
        (rf"{prefix}(class_embed|query_embed|input_proj)\.(.+)", r"model.\1.\2"),
        (r"controller\.(.+)", r"model.mask_head.controller.\1"),
        (r"mask_head\.dcn\.(.+)", r"model.mask_branch.fuse.\1"),
        (r"mask_head\.(lay[1-4])\.(.+)", r"model.mask_branch.\1.\2"),
    )


DUPLICATE_BBOX_EMBED = ("the same tensors as bbox_embed (the released code registers the box MLPs on the model and "
                        "again on the decoder for box refinement); loaded from bbox_embed")
UNUSED_ENCODER_BOX_PROJ = ("output_proj_box of an encoder layer: the released MSDeformAttn class creates it in the "
                           "encoder too, where it is never used")
COCO_CLASS_HEAD = ("COCO class head (SeqFormer deletes detr.class_embed when it starts from these weights; "
                   "YouTube-VIS has 42 logits)")
FRESH_CLASS_HEAD = "YouTube-VIS class heads (42 logits): the file's COCO heads are dropped"

SEQFORMER = WeightRules(
    name="seqformer",
    description="wjf5203/SeqFormer model zoo .pth (SeqFormer_r50 / SeqFormer_r101, YouTube-VIS 2019)",
    rename=_renames(r"detr\."),
    drop={
        r"^detr\.transformer\.decoder\.bbox_embed\.": DUPLICATE_BBOX_EMBED,
        r"^detr\.transformer\.encoder\.layers\.\d+\.self_attn\.output_proj_box\.": UNUSED_ENCODER_BOX_PROJ,
    },
)

SEQFORMER_COCO = WeightRules(
    name="seqformer_coco",
    description="wjf5203/SeqFormer COCO stage-1 weights (README 'Pretrain' column, weights/r50_weight.pth)",
    rename=SEQFORMER.rename,
    drop={**SEQFORMER.drop, r"^detr\.class_embed\.": COCO_CLASS_HEAD},
    fresh={r"^model\.class_embed\.": FRESH_CLASS_HEAD},
)

DEFORMABLE_DETR = WeightRules(
    name="deformable_detr",
    description="fundamentalvision/Deformable-DETR r50_deformable_detr_plus_iterative_bbox_refinement (COCO)",
    rename=_renames(""),
    drop={
        r"^transformer\.decoder\.bbox_embed\.": DUPLICATE_BBOX_EMBED,
        r"^class_embed\.": COCO_CLASS_HEAD,
    },
    fresh={
        r"^model\.decoder\.layers\.\d+\.(self_attn_box|norm_self_box)\.":
            "box-query self-attention (SeqFormer's query decomposition; Deformable DETR has one query per object)",
        r"^model\.decoder\.layers\.\d+\.(output_proj_box|norm_cross_box|ffn_box)\.":
            "box-query output projection, norm and FFN after the deformable cross-attention (SeqFormer only)",
        r"^model\.decoder\.layers\.\d+\.time_attention_weights\.":
            "temporal aggregation weights of the instance query (SeqFormer Eq. 3)",
        r"^model\.(mask_branch|mask_head)\.": "mask branch and dynamic mask head (Deformable DETR detects boxes only)",
        r"^model\.class_embed\.": FRESH_CLASS_HEAD,
    },
)

RULES = {rules.name: rules for rules in (SEQFORMER, SEQFORMER_COCO, DEFORMABLE_DETR)}
"""``SeqFormerModule.weight_rules``: tried in this order by :func:`~vidseg_common.weights.load_weights`."""
