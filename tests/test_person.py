"""The person model (`runtime.person`): the shipped ONNX equals MediaPipe's TFLite model, and a
missing or damaged file is one line naming the fix, at run time and in `livedream doctor`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from livedream.errors import UserError
from livedream.files import file_digest
from livedream.manifest import PERSON_GRAPH, PERSON_SHA256
from livedream.ops.doctor import FAIL, OK, check_person_model
from livedream.runtime.person import FIX, INPUT_SIZE, PersonModel, person_session

REFERENCE = Path(__file__).parent / "data" / "person_reference.npz"
# The TFLite model's own answer (ai-edge-litert, XNNPACK) on the sample portrait, written by
# `python -m livedream.export.person WHEEL --reference …`. Both runtimes sum in float32 through
# ~40 layers in their own order (XNNPACK vs MLAS; AVX2 and AVX-512 orders differ again), which
# moves a logit by ~1e-4 where it is largest: measured here 8.8e-5 on the chance at the steepest
# part of the sigmoid, mean 5e-7. 5e-4 is six times that, and 1/1000 of the 0.5 a mask is cut at.
MAX_DIFFERENCE = 5e-4
MEAN_DIFFERENCE = 1e-5


def test_the_shipped_model_is_the_one_the_manifest_names():
    assert file_digest(PERSON_GRAPH) == PERSON_SHA256
    assert PERSON_GRAPH.with_suffix(".LICENSE").read_text().count("Apache License") >= 1


def test_the_converted_model_equals_the_tflite_reference_on_a_stored_portrait():
    stored = np.load(REFERENCE)
    session = person_session()
    [output] = session.run(None, {"input_1": stored["input"].astype(np.float32) / np.float32(255.0)})
    difference = np.abs(output - stored["output"])
    print(f"max difference {difference.max():.2e}, mean {difference.mean():.2e}")
    assert output.shape == stored["output"].shape == (1, INPUT_SIZE[1], INPUT_SIZE[0], 1)
    assert difference.max() <= MAX_DIFFERENCE and difference.mean() <= MEAN_DIFFERENCE
    assert 0.3 < (stored["output"] > 0.5).mean() < 0.8  # the portrait is mostly person: the check sees a mask


def test_segment_feeds_the_model_as_the_reference_was_fed():
    """`PersonModel.segment` on the stored 256x144 picture gives the stored answer: the same
    scaling to 0..1, RGB order and layout as the reference run."""
    stored = np.load(REFERENCE)
    chance = PersonModel().segment(stored["input"][0])
    assert np.abs(chance - stored["output"][0, :, :, 0]).max() <= MAX_DIFFERENCE


def test_segment_answers_in_its_own_buffer():
    model = PersonModel()
    frame = np.zeros((90, 160, 3), np.uint8)
    assert model.segment(frame) is model.segment(frame)  # no per-frame allocation of the answer


def damaged(kind: str, folder: Path) -> tuple[Path, str]:
    """(path, the sha256 it is checked against) for each kind of damage."""
    path = folder / "person.onnx"
    data = PERSON_GRAPH.read_bytes()
    if kind == "missing":
        return path, PERSON_SHA256
    if kind == "folder":
        path.mkdir()
        return path, PERSON_SHA256
    written = {"empty": b"", "truncated": data[: len(data) // 2], "one byte flipped": data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],
               "not onnx": b"this is not a graph\n" * 100, "onnx of another model": (PERSON_GRAPH.parent / "sharpen.onnx").read_bytes()}
    path.write_bytes(written.get(kind, data))
    # "not onnx" is checked against its own hash: what a hand-edited PERSON_SHA256 would let through.
    return path, (file_digest(path) if kind == "not onnx" else PERSON_SHA256)


DAMAGE = ["missing", "folder", "empty", "truncated", "one byte flipped", "not onnx", "onnx of another model"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_missing_or_damaged_model_is_one_line_naming_the_fix(kind, tmp_path):
    path, sha256 = damaged(kind, tmp_path)
    with pytest.raises(UserError) as error:
        PersonModel(path, sha256)
    message = str(error.value)
    print(message)
    assert "\n" not in message and str(path) in message and message.endswith(FIX)


@pytest.mark.parametrize("kind", DAMAGE)
def test_doctor_names_the_damage_and_the_fix(kind, tmp_path):
    path, sha256 = damaged(kind, tmp_path)
    [check] = check_person_model(path, sha256)
    assert check.status == FAIL and str(path) in check.detail and check.fix == FIX and "\n" not in check.detail


def test_doctor_names_the_model_that_finds_the_visitors():
    [check] = check_person_model()
    assert check.status == OK and "MediaPipe selfie, landscape" in check.detail and "background model" in check.detail


def test_a_copy_that_matches_the_hash_opens(tmp_path):
    copy = tmp_path / "person.onnx"
    shutil.copyfile(PERSON_GRAPH, copy)
    assert PersonModel(copy).segment(np.zeros((36, 64, 3), np.uint8)).shape == (INPUT_SIZE[1], INPUT_SIZE[0])


def test_the_converter_refuses_a_file_that_is_not_the_wheel(tmp_path):
    from livedream.export.person import read_wheel

    (tmp_path / "not.whl").write_bytes(b"PK but not really")
    with pytest.raises(UserError) as error:
        read_wheel(tmp_path / "not.whl")
    assert "mediapipe==0.10.21" in str(error.value) and "\n" not in str(error.value)
