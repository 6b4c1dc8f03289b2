"""`python tools/look.py [options]` = `python -m livedream.testing.look [options]`."""

from livedream.testing.look import main

if __name__ == "__main__":
    raise SystemExit(main())
