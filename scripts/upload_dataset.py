#!/usr/bin/env python
"Thin wrapper: `python scripts/upload_dataset.py ARGS` is `melanoma kaggle dataset ARGS` (create or version a Kaggle dataset from a batched folder, batch by batch)."
import sys
from melanoma.cli import main

if __name__ == '__main__': sys.exit(main(['kaggle', 'dataset', *sys.argv[1:]]))
