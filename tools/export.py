"""`python tools/export.py [options]` = `livedream export [options]`."""

import sys

from livedream.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
