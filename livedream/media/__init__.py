"""Pictures and clips in files, decided by what a file holds and not by its name.

- `clips`: what a file is (`probe`: one picture or a moving clip, its frames counted by
  decoding them) and its frames, upright, with their timestamps;
- `pictures`: one picture in and out (OpenCV where it can, FFmpeg for the rest);
- `writing`: frames encoded into a video or an animated image (`VideoFileWriter`, `CODECS`);
- `targets`: what an output's name asks to be written, tried before any work;
- `keeping`: everything of a source but its picture (every sound track, subtitles, chapters,
  metadata) carried into the dreamed file.

The bottom layer: `offline` (livedream dream), the recording output and the cli use it.
"""
