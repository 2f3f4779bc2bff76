"""A RetinaNet-style detector (Lin et al. 2017, arXiv:1708.02002) that turns Atari screens into
object lists, and the state encoder built on it.

Pieces, one per file: labels (automatic boxes from flat-colour screens), anchors, boxes (IoU and
box coding), focal_loss, nms, model (backbone + FPN + class/box subnets), metrics (COCO mAP),
fit (training), dataset (labelled frames on disk), draw (boxes on frames), encoder (top-K
detections -> set encoder -> features). Labelling by playing a game, and the CLI, live a layer up:
python -m howsure.detector {label,fit} ...
Kept import-light: encoders/__init__.py imports encoders.detection.encoder.
"""
