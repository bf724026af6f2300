#!/usr/bin/env python
"Thin wrapper: `python scripts/kaggle_download.py ARGS` is `melanoma kaggle download ARGS` (download and unzip the competition files or a Kaggle dataset)."
import sys
from melanoma.cli import main

if __name__ == '__main__': sys.exit(main(['kaggle', 'download', *sys.argv[1:]]))
