"""Kubernetes value syntax that is not ours: names (DNS-1123, labels), resource quantities, durations.

Pure and dependency-free; every check raises ``ValueError`` with what would be valid, which ``spec``
turns into a ``FieldError`` at the field's dotted path. The names vcluster-mgr itself gives things are in
``naming``.
"""

from __future__ import annotations

from vcluster_mgr.kube.durations import (
    DURATION_PATTERN,
    format_duration,
    go_duration,
    parse_duration,
)
from vcluster_mgr.kube.names import (
    DNS1123_LABEL_MAX,
    DNS1123_LABEL_PATTERN,
    DNS1123_SUBDOMAIN_MAX,
    UNPRINTABLE,
    check_dns_label,
    check_dns_subdomain,
    check_label_key,
    check_label_value,
    check_printable,
)
from vcluster_mgr.kube.quantities import (
    QUANTITY_MAX,
    QUANTITY_PATTERN,
    Quantity,
    QuantityFormat,
    format_quantity,
    parse_quantity,
)

__all__ = [
    "DNS1123_LABEL_MAX",
    "DNS1123_LABEL_PATTERN",
    "DNS1123_SUBDOMAIN_MAX",
    "DURATION_PATTERN",
    "QUANTITY_MAX",
    "QUANTITY_PATTERN",
    "Quantity",
    "QuantityFormat",
    "UNPRINTABLE",
    "check_dns_label",
    "check_dns_subdomain",
    "check_label_key",
    "check_label_value",
    "check_printable",
    "format_duration",
    "format_quantity",
    "go_duration",
    "parse_duration",
    "parse_quantity",
]
