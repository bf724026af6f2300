#!/usr/bin/env python
"Thin wrapper: `python scripts/batch.py ARGS` is `melanoma batch ARGS` (split a folder into numbered batch folders with a checksum manifest)."
import sys
from melanoma.cli import main

if __name__ == '__main__': sys.exit(main(['batch', *sys.argv[1:]]))
