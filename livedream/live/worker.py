"""The dream worker: dreams the newest frame at its own rate, beside the show loop.

Showing never waits for dreaming. The loop hands the worker the newest frame whenever it is
free (`offer`); the worker dreams it with the carried detail of its previous dream warped
onto it (`LiveDreamer.dream_detail`: still parts deepen, moved parts follow, uncovered parts
fade in), and hands back a `FinishedDream` through a `DreamSlot` in one swap. The loop lays
the newest one over every shown frame (`pipeline.overlay`). Where the device dreams faster
than frames come (a GPU), every frame is offered and dreamed: one dream per shown frame, the
same code.

Control reaches the worker only through what the loop offers: each job carries the
effective Params, the seconds since the previous dream and whether to start afresh; and the
loop may abandon the dream in flight (`abandon`: a visitor arrived during a room's dream),
whose ONNX Runtime run then ends at its next node, as it does on a stop. A model
restart happens inside the guard, on this thread. `threaded=False` dreams inside `offer`,
on the caller's thread (tests that count frames; the show loop is then the dream's pace).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from livedream.live.schedule import DreamPlan
from livedream.params import Params
from livedream.pipeline.dreamer import Carried, LiveDreamer
from livedream.pipeline.overlay import FinishedDream
from livedream.pipeline.visitors import Visitors
from livedream.runtime.engine import DreamInterrupted
from livedream.runtime.model import LoadedModel

log = logging.getLogger(__name__)

RunFrame = Callable[[Callable[[LoadedModel], tuple[np.ndarray, np.ndarray]]], "tuple[np.ndarray, np.ndarray] | None"]
"""`GuardedModel.run_frame` of the current model: the dream with it, or None when skipped."""

JOIN_S = 10.0  # how long `stop` waits for a dream in flight (its run is interrupted: milliseconds on a CPU)
ERROR_BACKOFF_S = 2.0  # after a worker error, the loop offers nothing for this long


@dataclass(frozen=True)
class DreamJob:
    """What the loop asks of one dream."""

    index: int  # the source frame's index
    offered_at: float  # on the loop's clock
    params: Params  # the effective Params (adaptive quality applied)
    frame_s: float  # seconds since the previous dream began: the feedback's share
    fresh: bool  # drop the carried detail first (a cut, a model switch, opening hours)
    plan: DreamPlan = DreamPlan()  # the octave and the part of the frame it visits (`live.schedule`)
    visitors: Visitors | None = None  # the frame's, as the show loop found them (None: the dreamer looks itself)


class DreamSlot:
    """Keeps only the newest finished dream; triple buffered like `frames.NewestFrameSlot`,
    so the worker never writes arrays the show loop may still be reading."""

    BUFFERS = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: list[tuple[np.ndarray, np.ndarray]] = []
        self._published: int | None = None
        self._held: int | None = None
        self._dream: FinishedDream | None = None
        self._count = 0

    def publish(self, base_rgb: np.ndarray, detail: np.ndarray, job: DreamJob, dream_ms: float) -> None:
        with self._lock:
            if not self._buffers or self._buffers[0][0].shape != base_rgb.shape:
                self._buffers = [(np.empty_like(base_rgb), np.empty_like(detail)) for _ in range(self.BUFFERS)]
                self._published = self._held = None
            slot = next(i for i in range(self.BUFFERS) if i not in (self._published, self._held))
        base_copy, detail_copy = self._buffers[slot]
        np.copyto(base_copy, base_rgb)
        np.copyto(detail_copy, detail)
        with self._lock:
            self._count += 1
            self._published = slot
            self._dream = FinishedDream(base_copy, detail_copy, job.index, self._count, job.offered_at, dream_ms,
                                        job.plan.box is None)

    def newest(self) -> FinishedDream | None:
        """The newest finished dream (the same object until a newer one is published)."""
        with self._lock:
            self._held = self._published
            return self._dream


class DreamWorker:
    """One thread that dreams what the loop offers. `start` / `stop` may be called any number of
    times (freeze, opening hours and quitting stop it; no thread outlives `stop`)."""

    def __init__(self, dreamer: LiveDreamer, clock: Callable[[], float] = time.monotonic,
                 threaded: bool = True, loop_stopping: Callable[[], bool] = lambda: False) -> None:
        """`clock`: the loop's (for the back-off after an error); `loop_stopping`: the loop is
        ending, so the dream in flight is abandoned between two steps."""
        self._loop_stopping = loop_stopping
        self.dreamer = dreamer
        self.slot = DreamSlot()
        self.threaded = threaded
        self.error = ""  # the last worker error, for the banner ("" while healthy)
        self.dreams = 0
        self._clock = clock
        self._wake = threading.Condition()
        self._job: DreamJob | None = None
        self._frame: np.ndarray | None = None  # the worker's copy of the offered frame
        self._carried: list[np.ndarray] = []  # and of the detail it starts from, and its confidence
        self._mask: np.ndarray | None = None  # and of the visitor mask
        self._visitors: Visitors | None = None  # the offered frame's, with that copy
        self._starts_carried = False
        self._run_frame: RunFrame | None = None
        self._busy = False
        self._stopping = False
        self._abandoning = False  # the loop gave up the dream in flight (`abandon`)
        self._interrupt: Callable[[], None] | None = None  # ends the run of the dream in flight
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0

    # --- the loop's side ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None or not self.threaded:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="livedream-dream", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Abandon the dream in flight (its run ends at once) and end the thread."""
        thread = self._thread
        if thread is None:
            return
        with self._wake:
            self._stopping = True
            self._job = None
            self._wake.notify_all()
        self._interrupt_run()
        thread.join(JOIN_S)
        if thread.is_alive():
            log.error("the dream worker did not stop within %.0f s", JOIN_S)
        self._thread = None

    def abandon(self) -> None:
        """Give up the dream in flight: its run ends at once and nothing of it is shown (a
        visitor arrived during a room's dream, `live.schedule`). The next `offer` dreams as usual."""
        self._abandoning = True
        self._interrupt_run()

    def _interrupt_run(self) -> None:
        interrupt = self._interrupt
        if interrupt is not None:
            interrupt()

    def free(self, now: float) -> bool:
        """Whether an offer now would be dreamed next (nothing pending, nothing in flight)."""
        return self._job is None and not self._busy and now >= self._retry_at

    def offer(self, frame_rgb: np.ndarray, job: DreamJob, run_frame: RunFrame, carried: Carried | None) -> None:
        """Dream `frame_rgb` as `job` asks, with `run_frame`, starting from `carried` (the
        detail as shown on this frame; None: from nothing). Both are copied (the source and
        the overlay reuse their buffers), and so is the visitor mask of `job`. Call it only when `free`."""
        if self._frame is None or self._frame.shape != frame_rgb.shape:
            self._frame = np.empty_like(frame_rgb)
        np.copyto(self._frame, frame_rgb)
        self._visitors = job.visitors
        self._abandoning = False  # on the loop's thread, as `abandon`: an abandon after this is this job's
        if job.visitors is not None and job.visitors.mask is not None:
            if self._mask is None or self._mask.shape != job.visitors.mask.shape:
                self._mask = np.empty_like(job.visitors.mask)
            np.copyto(self._mask, job.visitors.mask)
            self._visitors = dataclasses.replace(job.visitors, mask=self._mask)
        self._starts_carried = carried is not None
        if carried is not None:
            if not self._carried or self._carried[0].shape != carried[0].shape:
                self._carried = [np.empty_like(array) for array in carried]
            for mine, given in zip(self._carried, carried):
                np.copyto(mine, given)
        if not self.threaded:
            self._dream(job, run_frame)
            return
        with self._wake:
            self._job, self._run_frame = job, run_frame
            self._busy = True
            self._wake.notify_all()

    # --- the worker's side --------------------------------------------------------------------

    def _should_stop(self) -> bool:
        return self._stopping or self._abandoning or self._loop_stopping()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._job is None and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    self._busy = False
                    return
                job, run_frame = self._job, self._run_frame
                self._job = None
            try:
                self._dream(job, run_frame)  # type: ignore[arg-type]
            except Exception as error:  # noqa: BLE001 - a bug in a dream must not end the show
                self.error = f"{type(error).__name__}: {error}"
                log.exception("the dream worker failed; the show goes on with the last dream")
                self._retry_at = self._clock() + ERROR_BACKOFF_S
                self.dreamer.reset()
            finally:
                self._busy = False

    def _dream(self, job: DreamJob, run_frame: RunFrame) -> None:
        frame = self._frame
        assert frame is not None
        if job.fresh:
            self.dreamer.reset()
        started = time.perf_counter()

        carried = (self._carried[0], self._carried[1]) if self._starts_carried and not job.fresh else None
        visitors = self._visitors

        def dream(model: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
            self._interrupt = model.interrupt
            try:
                return self.dreamer.dream_detail(frame, job.params, model, carried, self._should_stop, job.frame_s,
                                                 job.plan.octave, job.plan.box, visitors, job.plan.lean)
            finally:
                self._interrupt = None

        try:
            result = run_frame(dream)
        except DreamInterrupted:  # a stop or an abandon: its coherence state is half-updated
            self.dreamer.reset()
            return
        if result is None:  # an engine fault, logged by the guard: the last dream stays shown
            return
        self.error = ""
        self.dreams += 1
        self.slot.publish(*result, job, (time.perf_counter() - started) * 1000)
