"""The ATH demo: the ATH Shop (a native-mode ATH service) and the runner behind ``ath demo``."""

from athkit.demo._report import JsonReporter, Reporter, RichReporter, Row, Step, Summary
from athkit.demo._runner import DemoOptions, run_demo
from athkit.demo._stack import NativeStack, native_stack

__all__ = [
    "DemoOptions",
    "JsonReporter",
    "NativeStack",
    "Reporter",
    "RichReporter",
    "Row",
    "Step",
    "Summary",
    "native_stack",
    "run_demo",
]
