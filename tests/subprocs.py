"""Helpers for tests that run ``ath`` as a real subprocess."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` giving the child SIGINT's default action.

    A test run started in the background (``cmd &``, as some CI runners do) inherits an
    *ignored* SIGINT, and Python then installs no KeyboardInterrupt handler in the child, so a
    test that presses Ctrl-C on ``ath`` would wait forever. Restore the default first.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
