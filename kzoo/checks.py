"""Argument checks shared by every layer: one message per kind of mistake.

Standard library only (the bottom layer of kzoo). Each check returns the
converted value or raises ``error`` (:class:`kzoo.errors.InvalidArgumentError`
by default, a ``KzooError`` and a ``ValueError``; the orchestration passes
:class:`kzoo.errors.ConfigError`) with a one-line message naming the argument.
"""

import math
import numbers

from kzoo.errors import InvalidArgumentError


def check_positive(name, value, allow_zero=False, error=InvalidArgumentError):
    """``float(value)`` when it is a finite number > 0 (>= 0 with ``allow_zero``); else ``error``."""
    try:
        number = None if isinstance(value, (str, bytes)) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number) or not (number >= 0 if allow_zero else number > 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise error(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def check_int(name, value, minimum=1, error=InvalidArgumentError):
    """``int(value)`` when it is an integer (not a bool) >= ``minimum``; else ``error``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise error(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_dataset(name, valid, error=InvalidArgumentError):
    """``name`` when it is one of the dataset names ``valid``; else ``error`` listing them."""
    if name not in valid:
        raise error(f"unknown dataset {name!r}; valid datasets: {', '.join(valid)}")
    return name
