"""Dermoscopy images to melanoma predictions with fastai: SIIM-ISIC data readers, training, Kaggle submissions, Grad-CAM and a Gradio demo

Modules:

- `melanoma.batch`: Batch/unbatch large folders with checksum manifests: split 33,000 images into numbered folders (or zips) that Kaggle accepts, and put them back together with every checksum verified.
- `melanoma.evaluate`: AUC with a bootstrap confidence interval, ROC / precision-recall / calibration plots, operating points and a subgroup table, written as a small report (`report.md`, a self-contained `report.html`, `metrics.json`).
- `melanoma.model`: Backbones by name (timm or torchvision ResNets), offline ImageNet weights for EfficientNet-Lite0/1/2, optional metadata fusion, safetensors + JSON artifacts and `load_model`.
- `melanoma.segment`: Lesion segmentation: readers for the ISIC 2017 / ISIC 2018 / PH2 mask layouts, a small U-Net over the offline EfficientNet-Lite0 encoder trained with fastai (three seeds averaged by default), batched mask prediction, and what masks are used for: ABCD-style lesion measurements and lesion crops.
- `melanoma.store`: Training images that stream from the prepared JPEGs instead of sitting in RAM: `JPEGStore`, a drop-in for the cached uint8 tensor, and `choose_store`, which keeps the in-RAM cache where it fits a memory budget.
- `melanoma.train`: k-fold training with fastai: the table and its folds, the settings of a run (`TrainConfig`), `train` as a short sequence of steps that hand small dataclasses to each other, and the `melanoma train` command."""

__version__ = "0.1.0"
