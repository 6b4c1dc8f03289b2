"""tools/gpu_check.py: where the device is missing it says so and checks nothing; its bounds
fail a picture that is off. (On SwiftShader it runs whole: see the README's GPU section.)"""

from __future__ import annotations

import numpy as np
import pytest

from livedream.errors import UserError
from livedream.runtime.devices import place
from livedream.testing.gpu_check import main, picture_check


def test_without_cuda_it_says_so_in_one_line_and_checks_nothing(capsys) -> None:
    try:
        place("cuda")
        pytest.skip("CUDA is here: the check would run for real")
    except UserError:
        pass
    assert main(["--device", "cuda", "--no-live"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("gpu_check: nothing checked: ") and "no CUDA provider" in captured.err


@pytest.mark.parametrize("offset,loss,passed", [(0, 1.0, True), (3, 1.0, False), (0, 1.01, False)],
                         ids=["same", "picture-off", "loss-off"])
def test_a_picture_or_a_loss_off_fails_the_check(offset, loss, passed) -> None:
    expected = np.random.default_rng(0).integers(10, 240, (8, 8, 3), dtype=np.uint8)
    check = picture_check("frame", expected + np.uint8(offset), expected, loss, 1.0, 0.25, 1e-3)
    assert check.passed is passed
    assert check.line().startswith("PASS" if passed else "FAIL")
