"""Released weights SpVOS can start from: STCN's ``stcn.pth`` (hkchengrex/STCN; SpVOS released no code or weights).

``stcn.pth`` is a bare state_dict of ``model/network.py::STCN`` (multi-object: the value encoder's stem takes
RGB + this object's mask + the other objects' masks, 5 channels): ``key_encoder`` = torchvision ResNet-50 stem +
``res2`` (= layer1) + layer2 + layer3, ``value_encoder`` = STCN's ``mod_resnet`` ResNet-18 (convolutions with bias)
to layer3 + ``fuser`` (two ResBlocks + CBAM), ``key_proj``, ``key_comp`` and ``decoder``; 405 tensors
(BatchNorm running statistics and ``num_batches_tracked`` counters included).

One table, :data:`STCN`, serves both uses (``model.init_weights`` / ``vidseg weights import spvos``):

* ``gate: none`` (the non-sparse STCN baseline): every key maps one to one, nothing dropped, nothing fresh;
* ``gate: triple`` / ``static`` / ``residual`` (SpVOS): the same mapping, and the gates of the sparsified convolutions
  (``<conv>.gate.weight`` / ``.bias``; the residual baseline's ``<conv>.gate.*`` likewise) start fresh — reason
  "SpVOS gates are new". The sparsified convolutions keep their STCN weights.

An STCN stage-0 checkpoint (static-image pre-training, 4-channel value stem) does not fit (shape mismatch named):
``eval_davis.py`` zero-pads it to 5 channels; do that before importing.
"""

from __future__ import annotations

from vidseg_common.weights import WeightRules

GATES_ARE_NEW = "SpVOS gates are new"

STCN = WeightRules(
    name="stcn",
    description="hkchengrex/STCN saves/stcn.pth (model/network.py STCN, multi-object)",
    rename=(
        (r"key_encoder\.res2\.(.+)", r"net.key_encoder.backbone.body.layer1.\1"),
        (r"key_encoder\.((?:conv1|bn1|layer2|layer3)\..+)", r"net.key_encoder.backbone.body.\1"),
        (r"key_proj\.(.+)", r"net.key_encoder.key_proj.\1"),
        (r"key_comp\.(.+)", r"net.key_encoder.key_comp.\1"),
        (r"value_encoder\.((?:conv1|bn1|layer1|layer2|layer3)\..+)", r"net.value_encoder.backbone.body.\1"),
        (r"value_encoder\.fuser\.attention\.ChannelGate\.(.+)", r"net.value_encoder.fuser.attention.channel_gate.\1"),
        (r"value_encoder\.fuser\.attention\.SpatialGate\.spatial\.conv\.(.+)",
         r"net.value_encoder.fuser.attention.spatial_gate.spatial.\1"),
        (r"value_encoder\.fuser\.(block[12]\..+)", r"net.value_encoder.fuser.\1"),
        (r"decoder\.(.+)", r"net.decoder.\1"),
    ),
    fresh={r"\.gate\.(weight|bias)$": GATES_ARE_NEW},
)

RULES = {"stcn": STCN}
"""``SpVOSModule.weight_rules``."""
