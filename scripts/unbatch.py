#!/usr/bin/env python
"Thin wrapper: `python scripts/unbatch.py ARGS` is `melanoma unbatch ARGS` (restore the flat layout from batch folders, verifying every checksum)."
import sys
from melanoma.cli import main

if __name__ == '__main__': sys.exit(main(['unbatch', *sys.argv[1:]]))
