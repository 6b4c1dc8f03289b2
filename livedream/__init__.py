"""LiveDream: real-time DeepDream for installations, live visuals and kiosks."""

__version__ = "0.1.0"
