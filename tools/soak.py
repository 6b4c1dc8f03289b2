"""`python tools/soak.py [options]` = `python -m livedream.testing.soak [options]`."""

from livedream.testing.soak import main

if __name__ == "__main__":
    raise SystemExit(main())
