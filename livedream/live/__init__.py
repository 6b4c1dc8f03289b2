"""The live installation: `LiveApp`'s lifecycle and its one-screen `step()`, and the
small pieces it is made of (keys, the model set, opening hours, HUD text, the operator's
mask view, run statistics, frame budget, watchdog) plus `open_app`, which wires them from
the config.

It sequences the stages of `pipeline` and takes `Params` from `control`; it never
imports `export` (torch) or `cli`.
"""
