"""Ctrl-C and SIGTERM: a command stops cleanly, training at the end of its current optimizer step.

Standard library only (the bottom layer of kzoo). kzoo's command line runs inside
:func:`handling`: SIGINT (Ctrl-C), SIGTERM (what schedulers and containers
send) and SIGHUP (a closed terminal) then raise :class:`Interrupted`, which
unwinds like Ctrl-C (locks given back, nothing half-written) and ends the
command with exit code 128 + the signal's number (130, 143, 129). A signal
that was ignored when kzoo started (``nohup``) stays ignored. While a training loop runs (:func:`deferred`), the
first signal is held until the current optimizer step ends, where the loop's
guard writes a final checkpoint (with ``--checkpoint-dir``) and stops
(:func:`stop`); a second signal stops at once. Outside the command line Python's
own handlers stay in place.
"""

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C; schedulers, containers; a closed terminal
_STATE = {"pending": None, "deferring": 0, "handling": 0}


class Interrupted(KeyboardInterrupt):
    """The command was interrupted by ``signum`` (SIGINT: Ctrl-C; SIGTERM: a scheduler or container).

    A :class:`KeyboardInterrupt`, so code that lets Ctrl-C through lets it through too.
    """

    def __init__(self, signum=signal.SIGINT, detail=""):
        self.signum = int(signum)
        self.detail = detail
        super().__init__(f"interrupted ({self.signal_name}){detail}")

    @property
    def signal_name(self):
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self):
        """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + self.signum


def _handler(signum, frame):
    if _STATE["deferring"] and _STATE["pending"] is None:
        _STATE["pending"] = signum  # the training loop stops at the end of this step, checkpointed
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handling():
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` (deferred to the step's end while training).

    Only the main thread can install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # a signal ignored by whoever started us (nohup, a shell's background job) stays ignored
    previous = {s: signal.getsignal(s) for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    for s in previous:
        signal.signal(s, _handler)
    _STATE["handling"] += 1
    try:
        yield
    finally:
        _STATE["handling"] -= 1
        for s, h in previous.items():
            signal.signal(s, h)
        _STATE["pending"] = None


@contextlib.contextmanager
def deferred():
    """Within (a training loop): a signal is held until :func:`pending` is read at the step's end."""
    _STATE["deferring"] += 1
    try:
        yield
    finally:
        _STATE["deferring"] -= 1


def pending():
    """The number of the signal waiting for the current step to end, or None."""
    return _STATE["pending"]


def stop(detail=""):
    """Raise :class:`Interrupted` for the pending signal (``detail``: what was kept, for the message)."""
    signum, _STATE["pending"] = _STATE["pending"], None
    raise Interrupted(signum if signum is not None else signal.SIGINT, detail)
