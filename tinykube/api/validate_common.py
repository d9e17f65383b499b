"""Building blocks shared by the per-kind validators (upstream's apimachinery validation).

Validators take the decoded JSON (plain dicts) and return ``Cause`` lists; they never
raise on malformed shapes: a wrong type is itself reported as a field error.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from tinykube.api import names
from tinykube.api.errors import Cause
from tinykube.api.fieldpath import Path
from tinykube.api.quantity import parse_quantity

Obj = dict[str, Any]
Causes = list[Cause]
Validator = Callable[[Obj, "Obj | None"], Causes]

IMMUTABLE = "field is immutable"


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def go_map(labels: Mapping[str, Any] | None) -> str:
    """``%#v`` of a ``map[string]string`` (keys sorted, as Go prints maps)."""
    items = ", ".join(f'"{k}":"{v}"' for k, v in sorted((labels or {}).items()))
    return "map[string]string{" + items + "}"


def invalid_raw(path: Path, rendered: str, detail: str) -> Cause:
    body = f"Invalid value: {rendered}"
    return Cause(str(path), "FieldValueInvalid", f"{body}: {detail}" if detail else body)


def msgs_to_causes(path: Path, value: Any, messages: Iterable[str]) -> Causes:
    return [Cause.invalid(str(path), value, m) for m in messages]


def dns_label(value: Any, path: Path) -> Causes:
    if not isinstance(value, str):
        return [Cause.type_invalid(str(path), value, "must be of type string")]
    return msgs_to_causes(path, value, names.is_dns1123_label(value))


def dns_subdomain(value: Any, path: Path) -> Causes:
    if not isinstance(value, str):
        return [Cause.type_invalid(str(path), value, "must be of type string")]
    return msgs_to_causes(path, value, names.is_dns1123_subdomain(value))


def qualified_name(value: Any, path: Path) -> Causes:
    if not isinstance(value, str):
        return [Cause.type_invalid(str(path), value, "must be of type string")]
    return msgs_to_causes(path, value, names.is_qualified_name(value))


def labels(value: Any, path: Path) -> Causes:
    """``ValidateLabels``: every key a qualified name, every value a label value."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Cause.type_invalid(str(path), value, "must be of type object")]
    errs: Causes = []
    for k, v in value.items():
        errs += msgs_to_causes(path, k, names.is_qualified_name(k))
        if not isinstance(v, str):
            errs.append(Cause.type_invalid(str(path), v, "must be of type string"))
        else:
            errs += msgs_to_causes(path, v, names.is_valid_label_value(v))
    return errs


def required(value: Any, path: Path, detail: str = "") -> Causes:
    if value is None or value == "" or value == [] or value == {}:
        return [Cause.required(str(path), detail)]
    return []


def supported(value: Any, path: Path, allowed: Sequence[str], *,
              required_if_empty: bool = True) -> Causes:
    if value is None or value == "":
        return [Cause.required(str(path))] if required_if_empty else []
    if value not in allowed:
        return [Cause.not_supported(str(path), value, list(allowed))]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def non_negative(value: Any, path: Path) -> Causes:
    if value is None:
        return []
    if not _is_int(value):
        return [Cause.type_invalid(str(path), value, "must be of type integer")]
    if value < 0:
        return [Cause.invalid(str(path), value, "must be greater than or equal to 0")]
    return []


def positive(value: Any, path: Path) -> Causes:
    if value is None:
        return []
    if not _is_int(value):
        return [Cause.type_invalid(str(path), value, "must be of type integer")]
    if value <= 0:
        return [Cause.invalid(str(path), value, "must be greater than 0")]
    return []


def in_range(value: Any, path: Path, low: int, high: int) -> Causes:
    if value is None:
        return []
    if not _is_int(value):
        return [Cause.type_invalid(str(path), value, "must be of type integer")]
    if not low <= value <= high:
        return [Cause.invalid(str(path), value, f"must be between {low} and {high}, inclusive")]
    return []


def port_number(value: Any, path: Path, *, required_: bool = True) -> Causes:
    if value is None or value == 0:
        return [Cause.required(str(path))] if required_ else []
    return msgs_to_causes(path, value, names.is_valid_port_num(value))


_IANA_LETTER = re.compile(r"[a-z]")
_IANA_CHARS = re.compile(r"^[-a-z0-9]+$")


def is_valid_port_name(value: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 lowercase alphanumerics and '-', with a letter."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_CHARS.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not _IANA_LETTER.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_name(value: Any, path: Path) -> Causes:
    if not isinstance(value, str):
        return [Cause.type_invalid(str(path), value, "must be of type string")]
    return msgs_to_causes(path, value, is_valid_port_name(value))


def int_or_port_name(value: Any, path: Path) -> Causes:
    """A targetPort: a port number or an IANA service name."""
    if isinstance(value, str):
        if value.isdigit():
            return msgs_to_causes(path, int(value), names.is_valid_port_num(int(value)))
        return msgs_to_causes(path, value, is_valid_port_name(value))
    if _is_int(value):
        return msgs_to_causes(path, value, names.is_valid_port_num(value))
    return [Cause.type_invalid(str(path), value, "must be an integer or a string")]


PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' "
               "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def int_or_percent(value: Any, path: Path) -> Causes:
    """``ValidatePositiveIntOrPercent``."""
    if value is None:
        return []
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            return [Cause.invalid(str(path), value, PERCENT_MSG)]
        return []
    if _is_int(value):
        return non_negative(value, path)
    return [Cause.type_invalid(str(path), value, "must be an integer or a string")]


def percent_at_most_100(value: Any, path: Path) -> Causes:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value) and int(value[:-1]) > 100:
        return [Cause.invalid(str(path), value, "must not be greater than 100%")]
    return []


def is_zero_int_or_percent(value: Any) -> bool:
    return value == 0 or value == "0%" or value is None


def ip_address(value: Any, path: Path) -> Causes:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return [Cause.invalid(str(path), value, "must be a valid IP address, (e.g. 10.9.8.7 or "
                                                 "2001:db8::ffff)")]
    return []


def quantity(value: Any, path: Path) -> Causes:
    try:
        parse_quantity(value)
    except ValueError as exc:
        return [Cause.invalid(str(path), value, str(exc))]
    return []


def unchanged(new: Any, old: Any, path: Path, value_text: str | None = None) -> Causes:
    """``ValidateImmutableField``."""
    if new == old:
        return []
    if value_text is not None:
        return [invalid_raw(path, value_text, IMMUTABLE)]
    return [Cause.invalid(str(path), new, IMMUTABLE)]


def go_selector(selector: Any) -> str:
    """A LabelSelector as Go's ``%#v`` shows it (close enough to read)."""
    sel = as_dict(selector)
    match = sel.get("matchLabels")
    match_text = go_map(match) if match else "map[string]string(nil)"
    exprs = as_list(sel.get("matchExpressions"))
    expr_text = ("[]v1.LabelSelectorRequirement{" + ", ".join(
        f'v1.LabelSelectorRequirement{{Key:"{e.get("key", "")}", Operator:"'
        f'{e.get("operator", "")}", Values:[]string{{'
        + ", ".join(f'"{v}"' for v in as_list(e.get("values"))) + "}}" for e in exprs
        if isinstance(e, dict)) + "}") if exprs else "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{match_text}, MatchExpressions:{expr_text}}}"
