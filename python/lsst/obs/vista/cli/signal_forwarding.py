"""Passing SIGTERM and SIGINT on to the commands a runner started, so that
they stop with it instead of carrying on unseen.

Each command is started in a process group of its own, so that the signal
reaches the processes it starts in turn (``pipetask run -j N``'s workers)
and a terminal's Ctrl-C reaches the commands only through the runner, once.
The runner itself does not die of the signal: it records it, waits for its
commands to end, and can then register or remove what they left before it
exits (a cluster scheduler's time limit sends SIGTERM, then SIGKILL some
seconds later).
"""

from __future__ import annotations

__all__ = ("SignalForwarder",)

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any

_FORWARDED = (signal.SIGTERM, signal.SIGINT)


class SignalForwarder:
    """While in its ``with`` block, forward SIGTERM and SIGINT to the
    process groups of the commands started through `popen`.

    The block must run in the main thread (Python delivers signals there);
    the commands may be started from any thread.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        """The first signal received, or `None`."""
        self._lock = threading.Lock()
        self._forwarded_to: set[subprocess.Popen] = set()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalForwarder:
        for signum in _FORWARDED:
            self._previous[signum] = signal.signal(signum, self._forward)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def name(self) -> str:
        """Name of the signal received (e.g. ``SIGTERM``); empty if none."""
        return signal.Signals(self.received).name if self.received is not None else ""

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a command in a process group of its own.

        Parameters
        ----------
        argv : `~collections.abc.Sequence` [`str`]
            The command.
        **kwargs
            Passed to `subprocess.Popen`.

        Returns
        -------
        process : `subprocess.Popen`
        """
        with self._lock:
            process = subprocess.Popen(argv, process_group=0, **kwargs)
            self._forwarded_to.add(process)
            if self.received is not None:
                # The signal came while the command was being started.
                self._kill(process, self.received)
        return process

    def wait(self, process: subprocess.Popen) -> int:
        """Wait for a command started by `popen` and return its exit status."""
        status = process.wait()
        with self._lock:
            self._forwarded_to.discard(process)
        return status

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        # Not under the lock: the handler may interrupt the main thread
        # while it holds it.
        for process in list(self._forwarded_to):
            self._kill(process, signum)

    @staticmethod
    def _kill(process: subprocess.Popen, signum: int) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)
