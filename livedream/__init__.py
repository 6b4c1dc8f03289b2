"""LiveDream: real-time DeepDream for installations, live visuals and kiosks."""

import os

__version__ = "0.1.0"

# pygame prints a greeting on import unless told not to; set once here, before any module
# of the package can import it, so no import order has to be kept anywhere.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
