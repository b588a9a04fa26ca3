"""``athkit.conformance``: a black-box conformance kit for any ATH 0.1 server.

:func:`run_conformance` hosts real agent identity documents on 127.0.0.1, drives the handshake
against the server's URL (gateway or native, detected from discovery), gets consent through a
pluggable :class:`ConsentDriver`, and checks each MUST of the specification. ``ath conformance
URL`` is the command line for it.
"""

from athkit.conformance._drivers import (
    BrowserDriver,
    ConsentDriver,
    ConsentFailed,
    FollowRedirectsDriver,
    FormsDriver,
)
from athkit.conformance._report import print_report, report_html, report_json
from athkit.conformance._results import (
    CheckResult,
    ConformanceConfig,
    ConformanceReport,
    error_of,
)
from athkit.conformance._suite import run_conformance

__all__ = [
    "BrowserDriver",
    "CheckResult",
    "ConformanceConfig",
    "ConformanceReport",
    "ConsentDriver",
    "ConsentFailed",
    "FollowRedirectsDriver",
    "FormsDriver",
    "error_of",
    "print_report",
    "report_html",
    "report_json",
    "run_conformance",
]
