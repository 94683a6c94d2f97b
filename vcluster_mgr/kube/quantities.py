"""An exact parser and printer for Kubernetes resource quantities (``100m``, ``16Gi``, ``1e3``).

Pure; raises ``ValueError``. Values are ``Decimal`` so that splitting a quota across namespaces never rounds
up past what the tenant was given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from typing import Literal

# ---------------------------------------------------------------------------------------------
# Kubernetes resource quantities
# ---------------------------------------------------------------------------------------------

QuantityFormat = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]{1,6}|[numkMGTPE]?)"
)
QUANTITY_PATTERN = re.sub(r"\?P<\w+>", "", _QUANTITY.pattern)
"""The quantity grammar as a portable regular expression (used in the JSON Schema)."""

QUANTITY_MAX = Decimal(2**63 - 1)
"""Largest magnitude accepted: Kubernetes stores quota and limit values as 64-bit integers."""

_NANO = Decimal("1e-9")
_PRECISION = 60  # enough digits for any value up to QUANTITY_MAX with nano resolution, with room


@dataclass(frozen=True)
class Quantity:
    """A parsed Kubernetes quantity: its exact value and the notation it was written in.

    ``str(q)`` prints the canonical form the API server would print (``1.5Gi`` -> ``1536Mi``,
    ``0.5`` -> ``500m``, ``4000`` -> ``4k``), keeping the notation family of the input.
    """

    value: Decimal
    format: QuantityFormat

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)

    def split(self, parts: int, resolution: Decimal) -> Quantity:
        """This quantity divided by ``parts``, rounded down to a multiple of ``resolution``."""
        return self.portion(1, parts, resolution)

    def portion(self, weight: int, total: int, resolution: Decimal) -> Quantity:
        """``weight / total`` of this quantity, rounded down to a multiple of ``resolution``."""
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            share = (self.value * weight / total / resolution).to_integral_value(rounding=ROUND_DOWN) * resolution
        return Quantity(share, self.format)


def parse_quantity(raw: object) -> Quantity:
    """Parse a quantity exactly as Kubernetes does (``resource.ParseQuantity``).

    Accepts a string, an int or a float (YAML gives ``cpu: 8`` as an int). The grammar is a
    number (``5``, ``5.``, ``.5``, ``1.25``) with an optional sign and one suffix: a binary SI
    suffix (``Ki``..``Ei``), a decimal SI suffix (``n``, ``u``, ``m``, none, ``k``, ``M``, ``G``,
    ``T``, ``P``, ``E``) or a decimal exponent (``e3``, ``E-2``). Like Kubernetes, values finer than
    one nano-unit are rounded up (away from zero) to 1n. Raises ``ValueError`` for anything else,
    including magnitudes above ``QUANTITY_MAX``. Negative values parse; callers reject them.
    """
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        # ValueError, not TypeError: a wrong type in a spec is one more invalid value to report
        raise ValueError("is not a quantity: expected a string or number such as 500m, 2, 16Gi or 1e3")
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("is not a finite quantity")
        return _finish(Decimal(repr(raw)), "DecimalSI")
    if isinstance(raw, int) and abs(raw) > QUANTITY_MAX:
        raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
    text = str(raw)
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise ValueError(
            "is not a Kubernetes quantity: expected a number with an optional suffix "
            "(n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (1e3), such as 500m, 2, 16Gi"
        )
    number = Decimal(match["number"])
    if match["sign"] == "-":
        number = -number
    suffix = match["suffix"]
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if suffix in _BINARY_SUFFIXES:
            if abs(number) > QUANTITY_MAX:
                raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
            return _finish(number * (Decimal(1024) ** _BINARY_SUFFIXES[suffix]), "BinarySI")
        if suffix in _DECIMAL_SUFFIXES:
            return _finish(number.scaleb(_DECIMAL_SUFFIXES[suffix]), "DecimalSI")
        exponent = int(suffix[1:])
        if exponent > 40:  # anything non-zero beyond 1e40 is far above QUANTITY_MAX
            if number == 0:
                return Quantity(Decimal(0), "DecimalExponent")
            raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
        return _finish(number.scaleb(exponent), "DecimalExponent")


def _finish(value: Decimal, fmt: QuantityFormat) -> Quantity:
    if abs(value) > QUANTITY_MAX:
        raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        value = value.quantize(_NANO, rounding=ROUND_UP)
    return Quantity(value, fmt)


def format_quantity(value: Decimal, fmt: QuantityFormat) -> str:
    """The canonical text of ``value`` in the notation family ``fmt``, as the API server prints it.

    BinarySI values print with the largest ``Ki``..``Ei`` suffix that keeps the number whole
    (``1536Mi``); values below 1024 or with a fraction fall back to DecimalSI. DecimalSI and
    DecimalExponent print the largest power-of-1000 suffix (or ``eN``) that keeps the number whole.
    """
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if value == 0:
            return "0"
        sign = "-" if value < 0 else ""
        magnitude = abs(value)
        if fmt == "BinarySI":
            if magnitude >= 1024 and magnitude == magnitude.to_integral_value():
                whole = int(magnitude)
                power = 0
                while power < 6 and whole % 1024 == 0:
                    whole //= 1024
                    power += 1
                suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power]
                return f"{sign}{whole}{suffix}"
            fmt = "DecimalSI"
        exponent = -9
        mantissa = magnitude.scaleb(9)
        while mantissa % 1000 == 0 and (fmt == "DecimalExponent" or exponent < 18):
            mantissa /= 1000
            exponent += 3
        digits = str(int(mantissa))
        if fmt == "DecimalExponent":
            return f"{sign}{digits}" + (f"e{exponent}" if exponent else "")
        suffix = {v: k for k, v in _DECIMAL_SUFFIXES.items()}[exponent]
        return f"{sign}{digits}{suffix}"
