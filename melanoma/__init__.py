"""Dermoscopy images to melanoma predictions with fastai: SIIM-ISIC data readers, training, Kaggle submissions, Grad-CAM and a Gradio demo

Modules:

- `melanoma.batch`: Batch/unbatch large folders with checksum manifests: split 33,000 images into numbered folders (or zips) that Kaggle accepts, and put them back together with every checksum verified.
- `melanoma.card`: The model card: a `README.md` in every model folder, with Hugging Face front matter, that says what the model was trained on and under which licence, how it scored on each population, how its probabilities are calibrated, where its operating point is, and what it must not be used for. And `melanoma push`, which shares a folder on the Hub.
- `melanoma.evaluate`: AUC with a bootstrap confidence interval, ROC / precision-recall / calibration plots, operating points and a subgroup table, written as a small report (`report.md`, a self-contained `report.html`, `metrics.json`).
- `melanoma.folds`: Cross-validation folds stratified on the target and grouped by patient (or lesion), saved as `folds.csv` in the data folder.
- `melanoma.hub`: Model folders on the Hugging Face Hub: `hf://OWNER/NAME[@REV]` wherever a model folder goes (downloaded once, then loaded from the local cache), and `push_model`, which uploads a model folder's files and nothing else.
- `melanoma.images`: Every way an image becomes network input: opening any file (JPEG, PNG, DICOM, odd modes, bad files) as RGB, the data config a model's input is made with, normalisation, test-time views, and the item types the loaders take.
- `melanoma.model`: The network (a backbone by name, optional metadata fusion, a head), the schema of a model folder's `config.json` (`ModelConfig`), safetensors artifacts, and `MelanomaModel`: a trained model's folds, predicting as training did.
- `melanoma.novelty`: "This does not look like a dermoscopy image": how far an image is from the training images in a network's feature space, and the threshold above which a prediction should not be trusted.
- `melanoma.prepare`: Resized copies of a whole data set in the same layout, from JPEG or DICOM, in parallel and resumable; optionally lesion crops from masks or a segmentation model.
- `melanoma.sample`: A small, deterministic, clearly synthetic data set in the exact SIIM-ISIC 2020 Kaggle layout, behind `make demo`, the notebooks and the tests.
- `melanoma.segment`: Lesion segmentation: readers for the ISIC 2017 / ISIC 2018 / PH2 mask layouts, a small U-Net over the offline EfficientNet-Lite0 encoder trained with fastai (an ensemble of seeds), batched mask prediction, and what masks are used for: ABCD-style lesion measurements and lesion crops.
- `melanoma.store`: Where training images live while a model trains: an in-RAM uint8 cache (`image_cache`) when it fits, a stream that decodes the prepared files on demand (`JPEGStore`) when it does not, and `choose_store`, which picks between them.
- `melanoma.train`: k-fold training with fastai: the table and its folds, the settings of a run (`TrainConfig`), `train` as a short sequence of steps that hand small dataclasses to each other, and the `melanoma train` command."""

__version__ = "0.1.0"
