"""The visitor mask, the two objectives and the matched guide in the graph, against torch
autograd of the losses they define (float64, as the other gradient tests), and through the
exported graph on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from livedream.export.backward import DreamGradient, ObjectiveTensors, best_match, turned_toward  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.export.inception import TF2015, canonical_layer  # noqa: E402
from livedream.manifest import GUIDE_GRID  # noqa: E402
from livedream.control.presets import blend  # noqa: E402
from livedream.objective import parse_objective  # noqa: E402
from livedream.params import Params, parse_where  # noqa: E402
from livedream.runtime.engine import Engine  # noqa: E402
from livedream.runtime.objective import Aim  # noqa: E402
from tests.conftest import random_model  # noqa: E402

LAYERS = {"mixed0": 1.0, "mixed1": 0.0, "mixed2": 1.0}


def relative_error(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def model():
    return random_model(tuple(LAYERS), TF2015, seed=11)


def random_inputs(module: DreamGradient, generator: torch.Generator, dtype=torch.float64) -> ObjectiveTensors:
    total, count = sum(module.channels), len(module.layers)
    def rand(*shape):
        return torch.rand(*shape, dtype=dtype, generator=generator)
    return ObjectiveTensors(rand(count) + 0.5, rand(total) * 2 - 0.5, rand(total) * 2 - 0.5,
                            torch.tensor([0.7, 1.3], dtype=dtype), rand(total, GUIDE_GRID * GUIDE_GRID),
                            rand(2, count))


def masked_reference(model, module: DreamGradient, image, inputs: ObjectiveTensors, mask):
    """autograd of the masked two-objective loss with the guide's match held constant (the
    notebook's `y[:, A.argmax(1)]`) and each place's guide term |act| · cos(act, best) · |best|
    with |act| held too, times the pixel gain."""
    image = image.clone().requires_grad_(True)
    activations = model(image, module.layers)
    loss = 0.0
    start = 0
    for index, layer in enumerate(module.layers):
        act = activations[canonical_layer(layer)]
        count = act.shape[1]
        visitor = F.interpolate(mask[None, None], size=act.shape[2:], mode="bilinear", align_corners=False)
        room = inputs.region_gains[0] * (1 - visitor)
        visitor = inputs.region_gains[1] * visitor
        scale = inputs.layer_weights[index] / count
        room_w = inputs.channel_weights[start:start + count].view(1, -1, 1, 1)
        visitor_w = inputs.visitor_weights[start:start + count].view(1, -1, 1, 1)
        x = act[0].flatten(1)
        y = inputs.guide_features[start:start + count]
        best = y[:, (x.T @ y).argmax(1)].view_as(act).detach()  # the notebook's argmax, first index
        length = act.norm(dim=1, keepdim=True)
        matched = length.detach() * best.norm(dim=1, keepdim=True) * F.cosine_similarity(act, best, dim=1)[:, None]
        guided = room * inputs.guide_weights[0, index] + visitor * inputs.guide_weights[1, index]
        weighted = ((room * room_w + visitor * visitor_w) * act).mean((2, 3)).sum()
        loss = loss + scale * (weighted + (guided * matched).mean())
        start += count
    (grad,) = torch.autograd.grad(loss, image)
    visitor = F.interpolate(mask[None, None], size=image.shape[2:], mode="bilinear", align_corners=False)
    gain = inputs.region_gains[0] * (1 - visitor) + inputs.region_gains[1] * visitor
    return float(loss.detach()), grad * gain


@pytest.mark.parametrize("height,width,mask_size", [(75, 75, (2, 2)), (97, 131, (24, 33)), (120, 90, (120, 90))])
def test_masked_two_objective_guided_gradient_equals_autograd(model, height, width, mask_size):
    model = model.double()
    try:
        generator = torch.Generator().manual_seed(height)
        module = DreamGradient(model, LAYERS, torch.float64)
        image = torch.rand(1, 3, height, width, dtype=torch.float64, generator=generator) * 2 - 1
        inputs = random_inputs(module, generator)
        mask = torch.rand(*mask_size, dtype=torch.float64, generator=generator)
        ref_loss, ref_grad = masked_reference(model, module, image, inputs, mask)
        with torch.no_grad():
            loss, grad, _, _ = module(image, *inputs.as_tuple(), mask)
        assert abs(float(loss) - ref_loss) <= 1e-9 * abs(ref_loss)
        assert relative_error(grad, ref_grad) <= 1e-6
    finally:
        model.float()


def test_an_all_visitor_mask_with_one_objective_is_todays_gradient(model):
    """Mask all ones, the visitors dreaming the room's objective, gains 1: the plain loss."""
    generator = torch.Generator().manual_seed(3)
    module = DreamGradient(model, LAYERS).eval()
    image = torch.rand(1, 3, 90, 110, generator=generator) * 2 - 1
    plain = module.default_inputs(image)
    with torch.no_grad():
        today_loss, today, _, _ = module(image)
        loss, grad, _, _ = module(image, *plain.as_tuple(), torch.ones(7, 9))
    assert abs(float(loss) - float(today_loss)) <= 1e-6 * abs(float(today_loss))
    assert relative_error(grad, today) <= 1e-6


def test_the_guide_turns_each_place_toward_its_match_without_lengthening_it():
    """The guide's seed is orthogonal to each place's features (a step along it turns them, to
    first order, and leaves their length), lies in the plane of act and best, and a place of
    no features takes its match whole."""
    generator = torch.Generator().manual_seed(1)
    act = torch.rand(1, 6, 3, 4, dtype=torch.float64, generator=generator)
    act[..., 0, 0] = 0.0
    best = torch.rand(1, 6, 3, 4, dtype=torch.float64, generator=generator)
    turned = turned_toward(act, best)
    along = (turned * act).sum(1)
    assert along.abs().max() <= 1e-12 * float((best * act).sum(1).abs().max())
    assert torch.equal(turned[..., 0, 0], best[..., 0, 0])
    # best = turned + (a multiple of act): what the seed lost is only the part along act
    lost = best - turned
    assert torch.allclose(lost, act * ((lost * act).sum(1, keepdim=True) / (act * act).sum(1, keepdim=True).clamp_min(1e-30)))
    assert (turned * best).sum(1)[0, 1:].min() > 0  # still toward the match


def test_the_match_is_the_argmax_of_the_dot_products():
    generator = torch.Generator().manual_seed(0)
    act = torch.rand(1, 5, 4, 6, generator=generator)
    guide = torch.rand(5, 9, generator=generator)
    x = act[0].flatten(1)
    expected = guide[:, (x.T @ guide).argmax(1)].view_as(act)
    assert torch.equal(best_match(act, guide), expected)


@pytest.fixture(scope="module")
def region_graph(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("regions") / "regions.onnx"
    export_module(DreamGradient(model, LAYERS).eval(), path)
    return path


def test_the_exported_graph_takes_mask_regions_and_guide_like_the_module(model, region_graph):
    engine = Engine(region_graph, "cpu")
    rng = np.random.default_rng(4)
    guide = engine.objective.guide_features_of(*engine.features(rng.uniform(-1, 1, (1, 3, 80, 90)).astype(np.float32)))
    engine.objective.set(Aim(parse_objective("mixed0=1,mixed2:5=2"), parse_objective("mixed1=1"), (0.25, 1.0)), guide)
    assert engine.objective.guide_weights[0].tolist() == [0.0, 0.0, 1.0]  # mixed0's weight, at the deepest layer
    image = rng.uniform(-1, 1, (1, 3, 96, 128)).astype(np.float32)
    mask = rng.uniform(0, 1, (24, 32)).astype(np.float32)
    loss, grad = engine.gradient(image, mask)
    arrays = [torch.from_numpy(array.copy()) for _, array in engine.objective.arrays()]
    module = DreamGradient(model, LAYERS).eval()
    with torch.no_grad():
        ref_loss, ref_grad, _, _ = module(torch.from_numpy(image), *arrays, torch.from_numpy(mask))
    assert abs(loss - float(ref_loss)) <= 1e-4 * abs(float(ref_loss))
    assert relative_error(grad, ref_grad.numpy()) <= 1e-4


def test_where_visitors_confines_the_ascent_to_the_visitor(region_graph):
    engine = Engine(region_graph, "cpu")
    mask = np.zeros((96, 128), np.float32)
    mask[20:70, 40:90] = 1.0
    image = np.random.default_rng(5).uniform(-1, 1, (1, 3, 96, 128)).astype(np.float32)
    for gains, inside_larger in (((0.0, 1.0), True), ((1.0, 0.0), False)):
        engine.objective.set(Aim(parse_objective("mixed2=1"), (), gains))
        _, grad = engine.gradient(image, mask)
        inside = float(np.abs(grad[..., mask > 0.5]).mean())
        outside = float(np.abs(grad[..., mask < 0.01]).mean())
        assert (inside > 20 * outside) if inside_larger else (outside > 20 * inside)


def test_a_crossfade_of_where_moves_the_dream_from_the_visitor_to_the_room_smoothly(region_graph):
    """Preset blends of where = visitors → room, each gradient's share inside the visitor."""
    engine = Engine(region_graph, "cpu")
    mask = np.zeros((96, 128), np.float32)
    mask[20:70, 40:90] = 1.0
    image = np.random.default_rng(6).uniform(-1, 1, (1, 3, 96, 128)).astype(np.float32)
    start, end = Params(where=parse_where("visitors")), Params(where=parse_where("room"))
    shares = []
    for t in np.linspace(0.0, 1.0, 11):
        engine.objective.set(Aim(parse_objective("mixed2=1"), (), blend(start, end, float(t)).where.gains))
        _, grad = engine.gradient(image, mask)
        amount = np.abs(grad[0]).sum(axis=0)
        shares.append(float(amount[mask > 0.5].sum() / amount.sum()))
    steps = np.diff(shares)
    print("share of the dream inside the visitor along the crossfade:", " ".join(f"{s:.2f}" for s in shares))
    assert shares[0] > 0.95 and shares[-1] < 0.05
    assert np.all(steps < 0) and steps.min() > 3 * steps.mean()  # downhill all the way, no jump
