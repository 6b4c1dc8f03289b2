"""The in-graph ascent step (the GPU path) against the host reference update, on CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from livedream.export.backward import AscentSteps, DreamGradient  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.export.inception import TF2015  # noqa: E402
from livedream.manifest import LAPLACIAN_NORM  # noqa: E402
from livedream.pipeline.dream import STD_EPSILON, Ascent, AscentSettings  # noqa: E402
from livedream.runtime.devices import CPU  # noqa: E402
from livedream.runtime.engine import NO_VISITORS, Engine  # noqa: E402
from livedream.runtime.runners import StepRunner  # noqa: E402
from tests.chains import chain_bound, host_chain, relative_l2, valid_drift  # noqa: E402
from tests.conftest import default_objective, random_model  # noqa: E402

LAYERS = {"mixed0": 1.0}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("step")
    model = random_model(tuple(LAYERS), TF2015, seed=5)
    paths = {}
    for name, module in {
        "gradient": DreamGradient(model, LAYERS),
        "step1": AscentSteps(DreamGradient(model, LAYERS), 1),
        "step2": AscentSteps(DreamGradient(model, LAYERS), 2),
        "lap1": AscentSteps(DreamGradient(model, LAYERS), 1, LAPLACIAN_NORM),
        "fp16": DreamGradient(model, LAYERS, torch.float16),
    }.items():
        paths[name] = folder / f"{name}.onnx"
        export_module(module.eval(), paths[name])
    return paths


def reference_update(engine: Engine, image: np.ndarray, step_size: float) -> np.ndarray:
    """The tutorial's update on the host: normalise by std (+1e-8), step, clip."""
    _, grad = engine.gradient(image)
    return np.clip(image + step_size * grad / (grad.std() + STD_EPSILON), -1, 1)


def random_image(seed: int, height: int = 97, width: int = 131) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)


def test_in_graph_step_equals_reference_update(graphs):
    engine = Engine(graphs["gradient"], "cpu")
    runner = StepRunner(graphs["step1"], steps_per_run=1, device="cpu")
    image = random_image(0)
    expected = reference_update(engine, image.copy(), 0.05)
    stepped = image.copy()
    runner.ascend(stepped, steps=1, step_size=0.05, mask=NO_VISITORS)
    assert stepped.shape == image.shape
    assert not np.allclose(stepped, image)
    np.testing.assert_allclose(stepped, expected, atol=2e-5)


def test_lap_norm_step_graph_equals_the_hosts_laplacian_step(graphs):
    """One step with the Laplacian-normalised gradient: the graph's (`backward.laplacian_normalised`)
    against `dream.Ascent.step`'s (`pipeline.lapnorm`), element-wise; and not the std step."""
    engine = Engine(graphs["gradient"], "cpu")
    runner = StepRunner(graphs["lap1"], steps_per_run=1, device="cpu", gradient_norm=LAPLACIAN_NORM)
    image = random_image(5)
    expected = image.copy()
    settings = AscentSettings(steps=1, step_size=0.05, tile=max(image.shape[2:]), jitter=False,
                              gradient_norm=LAPLACIAN_NORM)
    Ascent(image.shape).step(engine, expected, settings, np.random.default_rng(0))
    stepped = image.copy()
    runner.ascend(stepped, steps=1, step_size=0.05, mask=NO_VISITORS)
    np.testing.assert_allclose(stepped, expected, atol=2e-5)
    assert np.abs(stepped - reference_update(engine, image.copy(), 0.05)).max() > 1e-2  # the norm matters


def ascents(runner: StepRunner, start: np.ndarray, runs: int, step_size: float) -> list[np.ndarray]:
    """The image after 0, 1, … `runs` runs of `runner`, each ascent started afresh from `start`."""
    results = [start.copy()]
    for run in range(1, runs + 1):
        image = start.copy()
        runner.ascend(image, steps=run * runner.steps_per_run, step_size=step_size, mask=NO_VISITORS)
        results.append(image)
    return results


def gradient_of(engine: Engine):
    return lambda image: engine.gradient(image)[1]


@pytest.mark.parametrize("name, per_run", [("step1", 1), ("step2", 2)])
def test_each_run_of_the_step_runner_continues_from_the_previous_runs_output(graphs, name, per_run):
    """Ping-pong between the two device buffers must feed each run the previous result.

    Pinned per run: run k's output equals `per_run` host updates of run k-1's output. A
    chain of steps on random weights amplifies one-ulp differences (a ReLU or max-pool
    decision flips and the pixel takes another path), so an element-wise bound on the third
    chained step would test ORT's fusion choices, not the ping-pong; each run is compared
    on its own input instead, element-wise for one step, and for a 2-step run within the
    drift that nudged host chains show on that input (`tests.chains`).
    """
    engine = Engine(graphs["gradient"], "cpu")
    runner = StepRunner(graphs[name], steps_per_run=per_run, device="cpu")
    start = random_image(1)
    results = ascents(runner, start, runs=3, step_size=0.03)
    for previous, current in zip(results, results[1:]):
        assert np.abs(current - previous).mean() > 0.005  # it moved on from the last run...
        if per_run == 1:  # ...by exactly one host update of the last run's output
            np.testing.assert_allclose(current, reference_update(engine, previous.copy(), 0.03), atol=2e-5)
        else:
            expected = host_chain(gradient_of(engine), previous, per_run, 0.03)
            bound = chain_bound(valid_drift(gradient_of(engine), previous, per_run, 0.03))
            assert relative_l2(current, expected, previous) <= bound


class OffByTenPercent:
    """A step runner whose step size is 10 % off: what the chain test must catch."""

    def __init__(self, runner: StepRunner) -> None:
        self.steps_per_run = runner.steps_per_run
        self._runner = runner

    def ascend(self, image, steps, step_size, mask):
        return self._runner.ascend(image, steps, step_size * 1.1, mask)


class OneStepShort(OffByTenPercent):
    """A step runner that skips one of the steps it is asked for."""

    def ascend(self, image, steps, step_size, mask):
        return self._runner.ascend(image, steps - self.steps_per_run, step_size, mask)


def chain_error(runner, start: np.ndarray, expected: np.ndarray, steps: int) -> float:
    stepped = start.copy()
    runner.ascend(stepped, steps, 0.03, NO_VISITORS)
    return relative_l2(stepped, expected, start)


@pytest.fixture(scope="module")
def host_chain_of_four(graphs) -> tuple[np.ndarray, np.ndarray, float]:
    """(start, the host's 4-step chain from it, the bound a runner's chain must keep to)."""
    engine = Engine(graphs["gradient"], "cpu")
    start = random_image(1)
    drift = valid_drift(gradient_of(engine), start, 4, 0.03)
    print(f"nudged host chains drift up to {drift:.2e} (relative L2 after 4 steps)")
    return start, host_chain(gradient_of(engine), start, 4, 0.03), chain_bound(drift)


@pytest.mark.parametrize("name, per_run", [("step1", 1), ("step2", 2)])
def test_step_runner_chain_stays_close_to_repeated_host_updates(graphs, host_chain_of_four, name, per_run):
    """The whole chain in aggregate: the runner may drift from the host chain as far as
    equally valid float32 chains drift from each other on this input (measured, so the bound
    holds on any CPU's kernels)."""
    start, expected, bound = host_chain_of_four
    error = chain_error(StepRunner(graphs[name], steps_per_run=per_run, device="cpu"), start, expected, 4)
    print(f"{name}: 4 chained steps, relative L2 to the host chain {error:.2e}, bound {bound:.2e}")
    assert error <= bound


@pytest.mark.parametrize("wrong", [OffByTenPercent, OneStepShort])
def test_chain_bound_catches_a_wrong_step_size_or_a_missing_step(graphs, host_chain_of_four, wrong):
    """The measured bound is no licence: a runner 10 % off in step size, or one step short,
    leaves it far behind."""
    start, expected, bound = host_chain_of_four
    runner = wrong(StepRunner(graphs["step1"], steps_per_run=1, device="cpu"))
    assert chain_error(runner, start, expected, 4) > bound


def test_step_runner_keeps_buffers_per_size(graphs):
    runner = StepRunner(graphs["step1"], steps_per_run=1, device="cpu")
    small, large = random_image(2, 80, 90), random_image(3, 120, 100)
    for image in (small, large, small):
        before = image.copy()
        runner.ascend(image, 1, 0.05, NO_VISITORS)
        assert np.abs(image - before).max() > 0
    assert len(runner._buffers) == 2


def fp16_agreement(graphs, inputs=None) -> tuple[float, np.ndarray]:
    """(cosine of the float16 and float32 graphs' gradients, the float16 gradient) on one
    image, under `inputs` (None: each graph's default objective)."""
    image = random_image(4, 160, 224)
    grads = {}
    for name in ("gradient", "fp16"):
        try:
            session = ort.InferenceSession(str(graphs[name]), providers=[CPU])
        except Exception as error:  # pragma: no cover - depends on the ORT build
            pytest.skip(f"this onnxruntime cannot run float16 graphs on the CPU: {error}")
        feeds = default_objective(session) if inputs is None else inputs
        grads[name] = session.run(["gradient"], {"image": image, **feeds})[0].astype(np.float64).ravel()
    a, b = grads["gradient"], grads["fp16"]
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), b


def test_fp16_gradient_agrees_with_fp32_in_direction(graphs):
    cosine, fp16 = fp16_agreement(graphs)
    print(f"fp16 vs fp32 gradient cosine: {cosine:.5f}")
    assert np.isfinite(fp16).all()
    assert cosine >= 0.99


def test_fp16_guided_gradient_agrees_with_fp32_in_direction(graphs):
    """With a matched guide the float16 graph's gradient is finite and points where the float32
    graph's does. Less closely than the plain one's (0.994): where two guide places match a
    place almost equally, float16 rounding can pick the other (measured 0.987)."""
    from livedream.runtime.objective import Aim

    engine = Engine(graphs["gradient"], "cpu")
    guide = engine.objective.guide_features_of(*engine.features(random_image(7, 120, 150)))
    engine.objective.set(Aim(engine.objective.default), guide)
    assert engine.objective.guide_weights.any()
    cosine, fp16 = fp16_agreement(graphs, {**dict(engine.objective.arrays()), "mask": NO_VISITORS})
    print(f"guided fp16 vs fp32 gradient cosine: {cosine:.5f}")
    assert np.isfinite(fp16).all()
    assert cosine >= 0.97
