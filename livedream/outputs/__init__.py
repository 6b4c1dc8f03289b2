"""Where finished frames go, besides the window: recording, virtual camera, NDI, Spout, Syphon.

The last stage of the picture's path (source → dreamer → outputs). Each output is an
`Output` behind one seam (`seam.Outputs`): the loop hands every finished frame over once
and never waits; each output runs on its own thread, takes the newest frame, drops frames
while busy, and a failing output logs one line and retries with back-off. It never imports
`live`, `control`, `cli`, `offline`, `runtime` or `export`: it is told frames, nothing else.
"""
