"""`livedream channels`: a labelled contact sheet of a layer's strongest channels, each a
different motif; mistakes on its command line are one line each."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from livedream.cli import main
from livedream.offline.channels import LABEL_HEIGHT, TILE, strongest_channels


def test_sheet_has_one_labelled_tile_per_channel_and_the_tiles_differ(lively_graph, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["channels", "--layer", "mixed0", "--count", "6", "-o", str(out), "--model", str(lively_graph)]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * (TILE + LABEL_HEIGHT), 4 * TILE, 3)
    tiles = [sheet[r * (TILE + LABEL_HEIGHT):r * (TILE + LABEL_HEIGHT) + TILE, c * TILE:(c + 1) * TILE].astype(int)
             for r in range(2) for c in range(4)][:6]
    differences = [np.abs(a - b).mean() for i, a in enumerate(tiles) for b in tiles[i + 1:]]
    assert min(differences) > 3  # six motifs, not one picture six times
    labels = sheet[TILE:TILE + LABEL_HEIGHT, :TILE]
    assert labels.max() > 200 and labels.mean() < 60  # light text on a dark strip
    printed = capsys.readouterr().out
    assert printed.count("mixed0:") >= 6 and "strongest channels of mixed0" in printed


def test_strongest_channels_are_ranked_by_mean_activation(lively_engine):
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
    ranked = strongest_channels(lively_engine, "mixed0", image, 5)
    means = lively_engine.channel_means[:256]
    assert ranked == list(np.argsort(means)[::-1][:5])
    assert means[ranked[0]] == means.max()


@pytest.mark.parametrize(("args", "named"), [
    (["--layer", "mixed11"], "--layer 'mixed11' is not a layer; use one of mixed0"),
    (["--layer", "Mixed_6b"], "--layer 'Mixed_6b' is not a layer"),
    (["--layer", "mixed0", "--count", "0"], "--count 0: use 1 to 256 (the channels of mixed0)"),
    (["--layer", "mixed0", "--count", "257"], "--count 257: use 1 to 256"),
    (["--layer", "mixed0", "--image", "missing.jpg"], "missing.jpg does not exist"),
    (["--layer", "mixed0", "--image", "x.jpg", "--noise"], "not allowed with argument"),
])
def test_bad_channel_browser_options_are_one_line(args, named, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    code = main(["channels", *args, "-o", str(out)])
    error = capsys.readouterr().err
    assert code == 2 and named in error and error.count("\n") == 1
    assert not out.exists()


def test_sheet_never_overwrites_its_own_photo(tmp_path, capsys, sample_image):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), sample_image[..., ::-1])
    before = photo.read_bytes()
    assert main(["channels", "--layer", "mixed0", "--image", str(photo), "-o", str(photo)]) == 2
    assert "input" in capsys.readouterr().err and photo.read_bytes() == before
