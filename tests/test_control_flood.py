"""A flood of OSC (or MIDI, web) messages: the newest value per address wins, so the loop's
share of the flood is at most one change per parameter a frame and memory stays flat."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

from pythonosc.udp_client import SimpleUDPClient

from livedream.config import OscConfig
from livedream.control.inbox import Inbox
from livedream.control.osc import OscServer
from livedream.params import NUMERIC_PARAMS, PARAM_RANGES, Params

FLOOD = 10_000
FRAME_S = 1 / 30  # a frame at the live loop's usual rate


def test_ten_thousand_changes_leave_one_pending_value_per_parameter() -> None:
    inbox = Inbox()
    tracemalloc.start()
    inbox.set_param("strength", 0.0, "test")
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(FLOOD):
        name = NUMERIC_PARAMS[i % len(NUMERIC_PARAMS)]
        inbox.set_param(name, PARAM_RANGES[name].low, "flood")
    inbox.set_param("strength", 0.125, "flood")
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert inbox.pending == len(NUMERIC_PARAMS)
    assert grown < 64 * 1024, f"{grown} bytes kept for a flood of {FLOOD}"
    assert inbox.update(Params(), 0.0).strength == 0.125  # the newest value won
    assert inbox.pending == 0


def test_an_osc_flood_costs_the_frame_loop_less_than_one_frame() -> None:
    inbox = Inbox()
    server = OscServer(OscConfig(port=0), inbox)
    client = SimpleUDPClient("127.0.0.1", server.address[1])
    update_seconds: list[float] = []
    stop = threading.Event()
    params = Params()

    def frame_loop() -> None:  # what the live loop does with the inbox, once per frame
        nonlocal params
        while not stop.is_set():
            # The loop thread's own CPU time: what applying the flood costs the loop, apart from
            # how a busy 2-core machine happens to schedule the receiving thread.
            started = time.thread_time()
            params = inbox.update(params, 0.0)
            update_seconds.append(time.thread_time() - started)
            time.sleep(FRAME_S)

    loop = threading.Thread(target=frame_loop)
    loop.start()
    try:
        started = time.monotonic()
        for i in range(FLOOD):
            client.send_message("/livedream/strength", (i % 400) / 1000)
        sent_s = time.monotonic() - started
        # UDP drops what the socket buffer cannot hold, so the last word is repeated until
        # heard, as a controller's next fader move would be.
        deadline = time.monotonic() + 10
        while params.strength != 0.4375 and time.monotonic() < deadline:
            client.send_message("/livedream/strength", 0.4375)  # exact in OSC float32
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join()
        server.close()
    total = sum(update_seconds)
    print(f"{FLOOD} OSC messages sent in {sent_s:.2f} s; the loop spent {1000 * total:.2f} ms on them "
          f"over {len(update_seconds)} frames (longest {1000 * max(update_seconds):.3f} ms)")
    assert params.strength == 0.4375
    assert total < FRAME_S, "applying the flood took the loop longer than one frame"
    assert inbox.pending == 0
