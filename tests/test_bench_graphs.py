"""`tools/bench.py --graphs PATH@KIND`: the session kinds compared side by side."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from livedream.testing.bench_cpu import SESSION_KINDS, GraphRun, compare_graphs, parse_graph_runs


@pytest.mark.parametrize("kind", ["", *SESSION_KINDS])
def test_each_kind_parses(kind: str) -> None:
    entry = f"models/a.onnx@{kind}" if kind else "models/a.onnx"
    assert parse_graph_runs(f"{entry},b.onnx") == [GraphRun(Path("models/a.onnx"), kind or "shipped"), GraphRun(Path("b.onnx"))]


# Unknown kinds: misspellings of the real ones, other case, and things that are no kind at all.
BAD_KINDS = sorted(
    {kind[:-1] for kind in SESSION_KINDS}
    | {kind.upper() for kind in SESSION_KINDS}
    | {f"{kind} " for kind in SESSION_KINDS}
    | {"fast", "1", "@", "fixed@parallel"}
)


@pytest.mark.parametrize(("kind", "position"), itertools.product(BAD_KINDS, [0, 1]))
def test_unknown_kind_names_the_entry_and_the_choices(kind: str, position: int) -> None:
    entries = ["good.onnx", "good.onnx"]
    entries[position] = f"bad.onnx@{kind}"
    with pytest.raises(ValueError) as error:
        parse_graph_runs(",".join(entries))
    message = str(error.value)
    assert f"bad.onnx@{kind}" in message and all(name in message for name in SESSION_KINDS)
    assert "\n" not in message


def test_every_kind_runs_the_same_gradient(small_graph: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [GraphRun(small_graph, kind) for kind in SESSION_KINDS]
    assert compare_graphs(runs, [(96, 128)], repeats=1) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  96x128")]
    assert len(rows) == len(SESSION_KINDS)
    # The last column is the gradient's cosine to the first (shipped) session's.
    assert all(float(row[-1]) > 0.99999 for row in rows)
