#!/usr/bin/env python
"""Generate, push and follow a Kaggle GPU kernel that unbatches a dataset uploaded with
upload_dataset.py and runs `melanoma train` on it, then pull the models. Needs pip install "melanoma[kaggle]".

The batch-upload workflow, one step per script (each is also a `melanoma` subcommand):
  batch.py -> upload_dataset.py -> kaggle_train.py (trains on Kaggle's GPUs), or kaggle_download.py -> unbatch.py
This one is `melanoma kaggle train`. Example:

    python scripts/kaggle_train.py melanoma-effb0 --dataset USER/siim-512 --upload-code --args "--arch tf_efficientnet_b0 --size 384"

`python scripts/kaggle_train.py --help` lists every option. It also runs from a checkout
whose dependencies are installed but not the package itself.
"""
import sys
from pathlib import Path

try: import melanoma  # noqa: F401
except ModuleNotFoundError: sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, not installed
from melanoma.cli import run_command

if __name__ == '__main__': sys.exit(run_command('kaggle train', sys.argv[1:], prog='kaggle_train.py'))
