"""Dreaming files: photos and videos, and the image / video file IO they need.

Uses the same runtime and the same dreamer as the live app; never imports `live`,
`control` or `cli`.
"""
