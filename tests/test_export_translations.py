"""The export's own ONNX translations (`export/translations.py`) give torch's numbers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from livedream.export.translations import TRANSLATIONS  # noqa: E402
from livedream.runtime.devices import CPU  # noqa: E402


class PoolWithIndices(torch.nn.Module):
    def __init__(self, stride: int, padding: int) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.max_pool2d(x, 3, self.stride, self.padding, return_indices=True)


def export_pool(path, stride: int, padding: int) -> ort.InferenceSession:
    example = torch.rand(2, 5, 17, 21)
    dims = {"x": {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("h", min=8), 3: torch.export.Dim("w", min=8)}}
    torch.onnx.export(PoolWithIndices(stride, padding), (example,), str(path), input_names=["x"],
                      dynamic_shapes=dims, dynamo=True, optimize=True, custom_translation_table=TRANSLATIONS)
    return ort.InferenceSession(str(path), providers=[CPU])


# Odd and even sizes (the last row/column is in no window when even), batch > 1 (ONNX's
# flat indices also count earlier images), both pools the net has.
CASES = [(batch, height, width, stride, padding)
         for batch in (1, 3) for height, width in ((17, 21), (18, 20), (9, 40))
         for stride, padding in ((2, 0), (1, 1))]


@pytest.mark.parametrize("batch,height,width,stride,padding", CASES)
def test_max_pool_indices_are_torchs_per_plane_indices(tmp_path, batch, height, width, stride, padding):
    session = export_pool(tmp_path / "pool.onnx", stride, padding)
    x = torch.randn(batch, 5, height, width, generator=torch.Generator().manual_seed(height * width + batch))
    want_values, want_indices = F.max_pool2d(x, 3, stride, padding, return_indices=True)
    values, indices = session.run(None, {"x": x.numpy()})
    np.testing.assert_array_equal(values, want_values.numpy())
    np.testing.assert_array_equal(indices, want_indices.numpy())
