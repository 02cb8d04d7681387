"""Rendering of predictions over frames: palettes, mask overlays, contact sheets, GIF/MP4 (H.264) and comparison plots.

What a paper module's ``render_overlay`` (the image the :class:`~vidseg_common.engine.callbacks.PredictionOverlayCallback`
logs) should call, per task, on one de-normalised frame (:func:`to_uint8_image`):

* VOS: :func:`overlay_ids` ``(image, ids, label_ids=True)`` — object ids in the DAVIS palette, id numbers drawn;
* VIS: :func:`overlay_instances` ``(image, masks, texts)`` — one colour per instance, "id class score" captions
  (:func:`vis_prediction_overlay` does it from a model's ``masks / scores / labels`` tensors);
* VSS: :func:`overlay_classes` ``(image, labels, dataset="cityscapes"|"camvid")`` — official class colours.

``vidseg visualize`` uses the same functions through :mod:`.sources` (readers of prediction folders / JSON).
"""

from vidseg_common.viz.overlay import overlay_classes, overlay_ids, overlay_instances, to_uint8_image
from vidseg_common.viz.palette import class_palette, instance_palette
from vidseg_common.viz.predictions import vis_prediction_overlay, vos_prediction_overlay
from vidseg_common.viz.sheet import contact_sheet, sample_indices
from vidseg_common.viz.video import Mp4Writer, write_gif, write_mp4

__all__ = [
    "Mp4Writer",
    "class_palette",
    "contact_sheet",
    "instance_palette",
    "overlay_classes",
    "overlay_ids",
    "overlay_instances",
    "sample_indices",
    "to_uint8_image",
    "vis_prediction_overlay",
    "vos_prediction_overlay",
    "write_gif",
    "write_mp4",
]
