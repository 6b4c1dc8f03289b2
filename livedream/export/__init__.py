"""Everything that needs torch: the InceptionV3 module, weight loaders, the hand-written
backward and the ONNX writer. Nothing outside this package imports it, except the CLI's
`export` command, lazily, so a gallery machine can run without torch installed."""
