#!/usr/bin/env python
"""Download and unzip the competition files or a Kaggle dataset (e.g. one uploaded with
upload_dataset.py); re-run to resume. Needs Kaggle credentials and pip install "melanoma[kaggle]".

The batch-upload workflow, one step per script (each is also a `melanoma` subcommand):
  batch.py -> upload_dataset.py -> kaggle_train.py (trains on Kaggle's GPUs), or kaggle_download.py -> unbatch.py
This one is `melanoma kaggle download`. Example:

    python scripts/kaggle_download.py data/siim-512-batches --dataset USER/siim-512

`python scripts/kaggle_download.py --help` lists every option. It also runs from a checkout
whose dependencies are installed but not the package itself.
"""
import sys
from pathlib import Path

try: import melanoma  # noqa: F401
except ModuleNotFoundError: sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, not installed
from melanoma.cli import run_command

if __name__ == '__main__': sys.exit(run_command('kaggle download', sys.argv[1:], prog='kaggle_download.py'))
