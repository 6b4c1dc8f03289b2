"""`python tools/bench.py [options]` = `python -m livedream.testing.bench [options]`."""

from livedream.testing.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
