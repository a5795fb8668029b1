"""Pictures for the book: images, grids, boxes and anchors drawn with matplotlib.

Only this package and ``widgets`` import matplotlib; everything below the
face of the library stays free of it. Used by every chapter.

One module per idea, each named after what it draws:

- ``images``: photos, grid cells and boxes, the layer under every picture;
- ``comparison``: the paper's detectors, speed against accuracy (chapter 1);
- ``network``: the whole network, its prediction grids, Darknet-19's layers (chapters 2, 7);
- ``clusters``: anchor boxes by k-means (chapter 3);
- ``head``: the head's channels (chapter 4);
- ``location``: direct location prediction (chapter 5);
- ``nms``: from 845 boxes to a few detections (section 5.1);
- ``loss``: which anchor answers for which object (chapter 6);
- ``reorg``: the passthrough's reorg (chapter 7);
- ``multiscale``: multi-scale training (chapter 8);
- ``training``: a run's history and its detections (chapter 9);
- ``measuring``: IoU, matching, precision-recall and AP (section 9.1);
- ``ablation``: the paper's Table 2 measured, idea by idea (chapter 9).

Every name is also available here: ``viz.draw_boxes`` is ``viz.images.draw_boxes``.
"""

from ..colors import CLASS_COLORS
from .images import draw_boxes, draw_grid, highlight_cells, load_rgb, show_image
from .head import (FIELD_COLORS, channel_labels, describe_anchor, draw_anchor_block,
                   draw_channel_grid, draw_head_cell, draw_head_tensor, overlay_grid_values)
from .location import draw_direct_location, draw_location
from .nms import draw_nms_before_after, draw_nms_step
from .loss import draw_anchor_labels, draw_assignment, draw_cell_maps
from .network import (draw_network, draw_prediction_grids,
                      layer_table_html)
from .multiscale import plot_scale_experiment, plot_speed_accuracy
from .comparison import plot_detector_comparison
from .reorg import (draw_reorg_cell, draw_reorg_channel, draw_reorg_orders,
                    draw_reorg_planes)
from .clusters import cluster_colors, cluster_sample, draw_anchor_shapes, draw_clusters
from .training import draw_detections, plot_history
from .ablation import plot_ablation
from .measuring import (OUTCOME_COLORS, draw_ap_rules, draw_iou, draw_matching,
                        plot_pr_curves)

__all__ = [
    "load_rgb",
    "show_image",
    "draw_grid",
    "draw_boxes",
    "highlight_cells",
    "CLASS_COLORS",
    "FIELD_COLORS",
    "channel_labels",
    "draw_channel_grid",
    "draw_head_tensor",
    "overlay_grid_values",
    "describe_anchor",
    "draw_head_cell",
    "draw_anchor_block",
    "draw_location",
    "draw_direct_location",
    "draw_nms_before_after",
    "draw_nms_step",
    "draw_anchor_labels",
    "draw_assignment",
    "draw_cell_maps",
    "layer_table_html",
    "draw_network",
    "draw_prediction_grids",
    "plot_detector_comparison",
    "draw_reorg_planes",
    "draw_reorg_orders",
    "draw_reorg_channel",
    "draw_reorg_cell",
    "draw_anchor_shapes",
    "cluster_colors",
    "cluster_sample",
    "draw_clusters",
    "plot_history",
    "draw_detections",
    "plot_speed_accuracy",
    "plot_scale_experiment",
    "plot_ablation",
    "OUTCOME_COLORS",
    "draw_iou",
    "draw_matching",
    "plot_pr_curves",
    "draw_ap_rules",
]
