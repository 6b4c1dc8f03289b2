"""`python tools/gpu_check.py [options]` = `python -m livedream.testing.gpu_check [options]`."""

from livedream.testing.gpu_check import main

if __name__ == "__main__":
    raise SystemExit(main())
