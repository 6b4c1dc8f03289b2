"""Running exported graphs: ONNX Runtime sessions and providers, the step and frame
runners, `load_model` (one declared `LoadedModel`), the guard that keeps a failing
session from taking the show down, and `cost`: what a step costs on this machine (measured
once, cached).

Never imports `pipeline`, `live`, `control`, `offline`, `ops` or `cli`; never imports
torch (only `exporting`, the first-run export, reaches `livedream.export`, lazily).
"""
