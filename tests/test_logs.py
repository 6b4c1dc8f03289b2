"""Logging: a rotating file in the configured folder, and one health line per interval (fake clock)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

from livedream.config import LogConfig
from livedream.errors import UserError
from livedream.ops.logs import (
    LOG_FILE_NAME,
    HealthReporter,
    read_rss_bytes,
    setup_logging,
)
from livedream.live.hud import HudStats


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch):
    """setup_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def stats(dream_ms: float = 40.0) -> HudStats:
    return HudStats(fps=0.0, dream_ms=dream_ms, provider="CPU", source_state="live")


def test_log_goes_to_a_file_in_the_configured_folder(tmp_path: Path) -> None:
    path = setup_logging(LogConfig(dir=str(tmp_path / "logs")))
    logging.getLogger("livedream.test").info("hello from the test")
    assert path == tmp_path / "logs" / LOG_FILE_NAME
    assert "INFO    livedream.test: hello from the test" in path.read_text()


def test_setting_up_twice_keeps_one_file_handler(tmp_path: Path) -> None:
    setup_logging(LogConfig(dir=str(tmp_path)))
    path = setup_logging(LogConfig(dir=str(tmp_path)))
    logging.getLogger("livedream.test").warning("once")
    assert path.read_text().count("once") == 1


def test_log_file_rotates_and_keeps_the_configured_backups(tmp_path: Path) -> None:
    path = setup_logging(LogConfig(dir=str(tmp_path), max_bytes=10_000, backups=2))
    for line in range(2_000):
        logging.getLogger("livedream.test").info("line %d %s", line, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2"]
    assert all(p.stat().st_size <= 10_000 for p in tmp_path.iterdir())
    assert "line 1999" in path.read_text()


def test_level_setting_filters_the_file(tmp_path: Path) -> None:
    path = setup_logging(LogConfig(dir=str(tmp_path), level="warning"))
    logging.getLogger("livedream.test").info("quiet")
    logging.getLogger("livedream.test").warning("loud")
    text = path.read_text()
    assert "loud" in text and "quiet" not in text


def test_unwritable_log_folder_is_a_user_error_naming_the_key(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"^\[log\] dir = .*a-file/logs.* cannot be written"):
        setup_logging(LogConfig(dir=str(blocker / "logs")))


def test_uncaught_exception_in_a_thread_lands_in_the_log_file(tmp_path: Path) -> None:
    path = setup_logging(LogConfig(dir=str(tmp_path)))

    def crash() -> None:
        raise RuntimeError("boom in a worker")

    thread = threading.Thread(target=crash, name="worker")
    thread.start()
    thread.join()
    text = path.read_text()
    assert "uncaught exception in thread worker" in text and "RuntimeError: boom in a worker" in text


def test_health_line_once_per_interval_with_the_figures(tmp_path: Path) -> None:
    path = setup_logging(LogConfig(dir=str(tmp_path)))
    reporter = HealthReporter(interval_s=60.0, read_rss=lambda: 300 * 2**20)
    lines = []
    now = 1000.0
    try:
        for frame in range(120):  # 2 fps for 60 s, with one 3 s stall
            now += 3.0 if frame == 50 else 0.5
            if frame == 70:
                logging.getLogger("livedream.test").error("a camera error")
            line = reporter.tick(now, stats(40.0), dropped_total=frame // 10)
            if line:
                lines.append(line)
    finally:
        reporter.close()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("health: 1.9 fps")  # 116 frames in the 60 s window
    assert "dream 40 ms" in line and "CPU" in line and "source live" in line
    assert "RSS 300 MB" in line and "max gap 3.00 s" in line and "errors 1" in line
    assert "dropped 11" in line  # dropped_total went from 0 to 11 in the window
    assert line in path.read_text()


def test_health_counts_restart_each_interval() -> None:
    reporter = HealthReporter(interval_s=10.0, read_rss=lambda: None)
    try:
        logging.getLogger("livedream.test").warning("before the first line")
        first = [reporter.tick(t, stats(), dropped_total=5) for t in range(0, 11)][-1]
        second = [reporter.tick(t, stats(), dropped_total=5) for t in range(11, 21)][-1]
    finally:
        reporter.close()
    assert first is not None and "warnings 1" in first and "RSS ?" in first
    assert second is not None and "warnings 0" in second and "dropped 0" in second


def test_rss_is_read_from_proc_on_linux() -> None:
    if not Path("/proc/self/statm").exists():
        pytest.skip("no /proc here")
    rss = read_rss_bytes()
    assert rss is not None and 10 * 2**20 < rss < 64 * 2**30
