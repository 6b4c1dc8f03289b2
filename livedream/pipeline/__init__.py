"""The picture's path, one stage a module, in the order data flows: sources → coherence →
dream / dreamer → display (one output of several).

A stage gets the frozen config or `Params` it needs and the loaded model; it never
imports `live`, `control`, `cli`, `offline` or `ops`, so it runs the same in the live
app, in `livedream dream` and in tests.
"""
