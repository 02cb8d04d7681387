"""Model parts shared by several papers: timm backbones, positional encodings, losses, Hungarian matching."""
