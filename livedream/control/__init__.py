"""Show control: everything that changes `Params` while the show runs.

Presets and crossfades, the sequencer, attract mode, OSC, MIDI, audio and the web panel
(the outputs, recording included, are `outputs/`: a control only asks for them by command).
Each control is a small object with `update(params, now) -> Params`; `hub.ControlHub`
builds the enabled ones from config and
is the one object the live loop talks to. Nothing here reaches inside a stage: it
never imports `live`, `pipeline`, `runtime`, `offline` or `cli`.
"""
