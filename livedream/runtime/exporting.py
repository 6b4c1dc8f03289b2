"""The runtime's door to the export step: progress display, and exporting the default graph
on first use. Imports torch (through `livedream.export`) only when an export really runs."""

from __future__ import annotations

import importlib.util
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console

from livedream.errors import UserError
from livedream.manifest import (
    DEEP_MODEL,
    DEFAULT_MODEL,
    EXPORT_HINT,
    STD_NORM,
    AscentVariant,
    GraphInfo,
    find_graph,
    read_manifest,
    webgpu_variant,
)
from livedream.params import Params
from livedream.runtime.devices import place

console = Console()  # progress on stdout: stderr carries only the error line, if any


def export_available() -> bool:
    return all(importlib.util.find_spec(name) for name in ("torch", "onnx"))


def export_with_progress(
    weights: str | None = None,
    layers: tuple[str, ...] | None = None,
    layer_weights: tuple[float, ...] | None = None,
    name: str | None = None,
    out_dir: Path = Path("models"),
    fp16: bool = False,
    steps_per_run: int = 0,
    frame: bool = False,
    through: str | None = None,
    webgpu: bool = False,
    gradient_norm: str = STD_NORM,
    octaves: int = 1,
    octave_scale: float = Params.octave_scale,
) -> GraphInfo:
    if not export_available():
        raise UserError("exporting needs torch and onnx: pip install 'livedream[export]'")
    from livedream.export.graph import ExportRequest, export_graph
    from livedream.export.inception import DEFAULT_LAYERS

    request = ExportRequest(
        weights=weights,
        layers=layers or DEFAULT_LAYERS,
        layer_weights=layer_weights,
        name=name,
        out_dir=out_dir,
        fp16=fp16,
        steps_per_run=steps_per_run,
        frame=frame,
        through=through,
        webgpu=webgpu,
        gradient_norm=gradient_norm,
        octaves=octaves,
        octave_scale=octave_scale,
    )
    started = time.perf_counter()
    with console.status("exporting", spinner="dots") as status:
        def progress(message: str) -> None:
            console.log(f"{message}")
            status.update(f"{message} …")

        result = export_graph(request, progress)
    seconds = time.perf_counter() - started
    console.print(
        f"wrote [bold]{result.path}[/] ({result.size_bytes / 1e6:.1f} MB) in {seconds:.1f} s — "
        f"layers {', '.join(result.info.layers)}, {result.info.dtype}, weights {result.info.weights_source}"
    )
    return result.info


def export_in_child(**options: object) -> GraphInfo:
    """`export_with_progress(**options)` in a child process, its progress on the same terminal.

    The first run's show then does not keep torch and the exporter's memory (measured: RSS
    1423 MB after an in-process first-run export, 580 MB on the next start); an export's
    `UserError` comes back as itself, still one line.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(export_with_progress, **options).result()


DEEP_THROUGH = "mixed10"  # the deep graph covers every mixed block


def export_default_graphs(out_dir: Path, **options: object) -> GraphInfo:
    """The two graphs every objective needs: `default` (mixed0–mixed5, the live and photo
    graph) and `deep` (mixed0–mixed10, for the deep looks); returns the default's entry."""
    info = export_with_progress(out_dir=out_dir, **options)  # type: ignore[arg-type]
    export_with_progress(out_dir=out_dir, through=DEEP_THROUGH, **options)  # type: ignore[arg-type]
    return info


def _usable(models_dir: Path, name: str) -> bool:
    """Listed, present, and of this release's graph format (`manifest.GRAPH_FORMAT`)."""
    known = read_manifest(models_dir)
    return name in known and (models_dir / known[name].file).exists() and known[name].of_this_release


def ensure_model(name: str, models_dir: Path, device: str = "auto", live: bool = False) -> tuple[Path, GraphInfo]:
    """The graph `name`, exporting the default graphs first if missing (or of an earlier
    release, whose objective was baked in) and torch is here; with the default graph, the
    graphs where `device` runs need (`device_graphs`) are exported once too."""
    if name == DEFAULT_MODEL and not (_usable(models_dir, DEFAULT_MODEL) and _usable(models_dir, DEEP_MODEL)):
        if not export_available():
            raise UserError(f"the default model is not exported yet (or is from an earlier release); {EXPORT_HINT}")
        console.print("first run: exporting the default DeepDream graphs "
                      "(once, about two and a half minutes on 2 CPU cores)")
        if not _usable(models_dir, DEFAULT_MODEL):
            export_in_child(out_dir=models_dir)
        export_in_child(out_dir=models_dir, through=DEEP_THROUGH)
    if name == DEFAULT_MODEL and export_available():
        provider = place(device).provider
        for graph, options in device_graphs(provider, live).items():
            if not _usable(models_dir, graph):
                console.print(f"{provider} found: exporting the graph {graph} (once)")
                export_in_child(out_dir=models_dir, **options)
    return find_graph(name, models_dir)


def live_gpu_graphs(shipped: Params) -> dict[str, dict[str, object]]:
    """The GPU live path's graphs for the `shipped` live settings, by name suffix with their export
    options: whole frames of the shipped ascent (its octaves and gradient norm) at its steps and at
    one step, and whole steps of its gradient norm for any other setting."""
    graphs: dict[str, dict[str, object]] = {}
    for steps in sorted({1, max(1, shipped.steps)}):
        ascent = AscentVariant.of(steps, shipped.octaves, shipped.octave_scale, shipped.gradient_norm)
        graphs[ascent.name_suffix(frame=True)] = ascent_options(ascent, frame=True)
    stepping = AscentVariant(1, gradient_norm=shipped.gradient_norm)
    graphs[stepping.name_suffix(frame=False)] = ascent_options(stepping, frame=False)
    return graphs


def ascent_options(ascent: AscentVariant, frame: bool) -> dict[str, object]:
    """`export_with_progress`'s options for a frame (or step) graph of `ascent`."""
    options: dict[str, object] = {"frame": frame, "steps_per_run": ascent.steps, "gradient_norm": ascent.gradient_norm}
    if ascent.octaves > 1:
        options.update(octaves=ascent.octaves, octave_scale=ascent.octave_scale)
    return options


LIVE_GPU_GRAPHS = live_gpu_graphs(Params())  # the defaults config.toml ships


def device_graphs(provider: str, live: bool) -> dict[str, dict[str, object]]:
    """The graphs, beyond `default` and `deep`, that dreaming on `provider` uses, by name:
    on CUDA the float16 live graphs; on WebGPU the index-free variants of the two, and its
    float32 live graphs (float16 on WebGPU needs an adapter feature not every one has)."""
    if provider == "CUDA":
        return {f"{DEFAULT_MODEL}-fp16-{kind}": {"fp16": True, **options}
                for kind, options in LIVE_GPU_GRAPHS.items()} if live else {}
    if provider != "WebGPU":
        return {}
    graphs: dict[str, dict[str, object]] = {
        webgpu_variant(DEFAULT_MODEL): {"webgpu": True},
        webgpu_variant(DEEP_MODEL): {"webgpu": True, "through": DEEP_THROUGH},
    }
    if live:
        graphs.update({f"{webgpu_variant(DEFAULT_MODEL)}-{kind}": {"webgpu": True, **options}
                       for kind, options in LIVE_GPU_GRAPHS.items()})
    return graphs
