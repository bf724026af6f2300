#!/usr/bin/env python
"""Split a folder into numbered batch folders (at most 1,000 files each, what Kaggle takes in one upload)
with a SHA-256 manifest; re-run to resume.

The batch-upload workflow, one step per script (each is also a `melanoma` subcommand):
  batch.py -> upload_dataset.py -> kaggle_train.py (trains on Kaggle's GPUs), or kaggle_download.py -> unbatch.py
This one is `melanoma batch`. Example:

    python scripts/batch.py data/siim-512 data/siim-512-batches --max-bytes 2GB

`python scripts/batch.py --help` lists every option. It also runs from a checkout
whose dependencies are installed but not the package itself.
"""
import sys
from pathlib import Path

try: import melanoma  # noqa: F401
except ModuleNotFoundError: sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, not installed
from melanoma.cli import run_command

if __name__ == '__main__': sys.exit(run_command('batch', sys.argv[1:], prog='batch.py'))
