"""Model parts shared by several papers: timm backbones, positional encodings, losses, Hungarian matching, the
DETR-family FFN block (:mod:`.ffn`) and the VIS set-criterion loss contract (:mod:`.set_criterion`)."""
