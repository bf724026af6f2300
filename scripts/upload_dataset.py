#!/usr/bin/env python
"""Create (or version) a Kaggle dataset from a folder written by batch.py, uploading batch by batch;
re-run to resume. Needs Kaggle credentials and the kaggle extra: pip install "melanoma[kaggle]".

The batch-upload workflow, one step per script (each is also a `melanoma` subcommand):
  batch.py -> upload_dataset.py -> kaggle_train.py (trains on Kaggle's GPUs), or kaggle_download.py -> unbatch.py
This one is `melanoma kaggle dataset`. Example:

    python scripts/upload_dataset.py create data/siim-512-batches --slug siim-512

`python scripts/upload_dataset.py --help` lists every option. It also runs from a checkout
whose dependencies are installed but not the package itself.
"""
import sys
from pathlib import Path

try: import melanoma  # noqa: F401
except ModuleNotFoundError: sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, not installed
from melanoma.cli import run_command

if __name__ == '__main__': sys.exit(run_command('kaggle dataset', sys.argv[1:], prog='upload_dataset.py'))
