#!/usr/bin/env python
"Thin wrapper: `python scripts/kaggle_train.py ARGS` is `melanoma kaggle train ARGS` (generate, push and follow a Kaggle GPU kernel running melanoma train)."
import sys
from melanoma.cli import main

if __name__ == '__main__': sys.exit(main(['kaggle', 'train', *sys.argv[1:]]))
