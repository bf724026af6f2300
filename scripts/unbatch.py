#!/usr/bin/env python
"""Restore the flat layout from the batch folders (or zips) that batch.py wrote, verifying every
checksum; re-run to resume.

The batch-upload workflow, one step per script (each is also a `melanoma` subcommand):
  batch.py -> upload_dataset.py -> kaggle_train.py (trains on Kaggle's GPUs), or kaggle_download.py -> unbatch.py
This one is `melanoma unbatch`. Example:

    python scripts/unbatch.py data/siim-512-batches data/siim-512

`python scripts/unbatch.py --help` lists every option. It also runs from a checkout
whose dependencies are installed but not the package itself.
"""
import sys
from pathlib import Path

try: import melanoma  # noqa: F401
except ModuleNotFoundError: sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, not installed
from melanoma.cli import run_command

if __name__ == '__main__': sys.exit(run_command('unbatch', sys.argv[1:], prog='unbatch.py'))
