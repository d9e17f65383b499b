"""Label selectors, field selectors and node selector terms, with upstream's semantics.

Label selector strings follow k8s.io/apimachinery/pkg/labels: ``a=b``, ``a==b``, ``a!=b``,
``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``; requirements are ANDed.
``!=`` and ``notin`` also match objects without the label, as upstream.
Field selectors (k8s.io/apimachinery/pkg/fields) support ``=``, ``==`` and ``!=`` with
backslash escapes, matched against the flat ``field -> string`` map each kind exposes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from tinykube.api import names

# --- label selectors -------------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GT, LT = "exists", "!", "gt", "lt"
_SET_OPS = (IN, NOT_IN)
_EQ_OPS = (EQUALS, DOUBLE_EQUALS, NOT_EQUALS)

# LabelSelectorRequirement operators (matchExpressions) -> internal ops.
_EXPRESSION_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


@dataclass(frozen=True)
class Requirement:
    """One ANDed term: ``key op values``."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in (IN, EQUALS, DOUBLE_EQUALS):
            return present and value in self.values
        if self.op in (NOT_IN, NOT_EQUALS):
            return not present or value not in self.values
        if self.op == EXISTS:
            return present
        if self.op == DOES_NOT_EXIST:
            return not present
        if self.op in (GT, LT):
            if not present:
                return False
            try:
                have, want = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == GT else have < want
        return False

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == DOES_NOT_EXIST:
            return "!" + self.key
        if self.op in _EQ_OPS:
            return f"{self.key}{self.op}{self.values[0]}"
        if self.op == GT:
            return f"{self.key}>{self.values[0]}"
        if self.op == LT:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


def _check_key(key: str) -> None:
    errs = names.is_qualified_name(key)
    if errs:
        raise ValueError(f"unable to parse requirement: invalid label key {key!r}: "
                         + "; ".join(errs))


def _check_value(value: str) -> None:
    errs = names.is_valid_label_value(value)
    if errs:
        raise ValueError(f"unable to parse requirement: invalid label value: {value!r}: "
                         + "; ".join(errs))


def new_requirement(key: str, op: str, values: Iterable[str] = ()) -> Requirement:
    """Build a validated requirement (``labels.NewRequirement``)."""
    _check_key(key)
    vals = tuple(values)
    if op in _SET_OPS:
        if not vals:
            raise ValueError("for 'in', 'notin' operators, values set can't be empty")
        vals = tuple(sorted(set(vals)))
    elif op in _EQ_OPS:
        if len(vals) != 1:
            raise ValueError("exact-match compatibility requires one single value")
    elif op in (EXISTS, DOES_NOT_EXIST):
        if vals:
            raise ValueError("values set must be empty for exists and does not exist")
    elif op in (GT, LT):
        if len(vals) != 1:
            raise ValueError("for 'Gt', 'Lt' operators, exactly one value is required")
        try:
            int(vals[0])
        except ValueError:
            raise ValueError(f"for 'Gt', 'Lt' operators, the value must be an integer: "
                             f"{vals[0]!r}") from None
        return Requirement(key, op, vals)
    else:
        raise ValueError(f"operator {op!r} is not recognized")
    for v in vals:
        _check_value(v)
    return Requirement(key, op, vals)


_SPECIAL = set("!=,()<> \t\n")


def _tokens(text: str) -> list[str]:
    """Split a label selector into identifiers and operator tokens."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\n":
            i += 1
        elif text.startswith("==", i) or text.startswith("!=", i):
            out.append(text[i:i + 2])
            i += 2
        elif ch in "!=,()<>":
            out.append(ch)
            i += 1
        else:
            j = i
            while j < len(text) and text[j] not in _SPECIAL:
                j += 1
            out.append(text[i:j])
            i = j
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    @staticmethod
    def is_ident(tok: str | None) -> bool:
        return tok is not None and tok not in ("!", "=", "==", "!=", ",", "(", ")", "<", ">")

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        if self.peek() is None:
            return reqs
        while True:
            reqs.append(self.requirement())
            tok = self.take()
            if tok is None:
                return reqs
            if tok != ",":
                raise ValueError(f"found '{tok}', expected: ',' or 'end of string'")
            if self.peek() is None:
                raise ValueError("found 'end of string', expected: identifier or '!'")

    def requirement(self) -> Requirement:
        tok = self.take()
        if tok == "!":
            key = self.take()
            if not self.is_ident(key):
                raise ValueError(f"found '{key or 'end of string'}', expected: identifier")
            return new_requirement(key, DOES_NOT_EXIST)  # type: ignore[arg-type]
        if not self.is_ident(tok):
            raise ValueError(f"found '{tok or 'end of string'}', expected: !, identifier, or "
                             "'end of string'")
        key: str = tok  # type: ignore[assignment]
        nxt = self.peek()
        if nxt is None or nxt == ",":
            return new_requirement(key, EXISTS)
        op = self.take()
        if op in ("=", "==", "!="):
            value = self.peek()
            if value is None or value == ",":
                return new_requirement(key, op, ("",))
            if not self.is_ident(value):
                raise ValueError(f"found '{value}', expected: identifier after '{op}'")
            self.take()
            return new_requirement(key, op, (value,))  # type: ignore[arg-type]
        if op in (">", "<"):
            value = self.take()
            if not self.is_ident(value):
                raise ValueError(f"found '{value or 'end of string'}', expected: integer")
            return new_requirement(key, GT if op == ">" else LT, (value,))  # type: ignore
        if op in (IN, NOT_IN):
            return new_requirement(key, op, self.value_set())
        raise ValueError(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")

    def value_set(self) -> list[str]:
        tok = self.take()
        if tok != "(":
            raise ValueError(f"found '{tok or 'end of string'}', expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            tok = self.take()
            if tok is None:
                raise ValueError("found 'end of string', expected: ')'")
            if tok == ")":
                if expect_value and values:
                    values.append("")
                return values
            if tok == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not self.is_ident(tok) or not expect_value:
                raise ValueError(f"found '{tok}', expected: ',', ')' or identifier")
            values.append(tok)
            expect_value = False


@dataclass(frozen=True)
class LabelSelector:
    """ANDed requirements. ``nothing`` selectors (from a nil LabelSelector) match nothing."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "LabelSelector":
        """Parse a selector string; raises ValueError with upstream-like wording."""
        if text is None:
            return cls()
        reqs = _Parser(text).parse()
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def everything(cls) -> "LabelSelector":
        return cls()

    @classmethod
    def none(cls) -> "LabelSelector":
        return cls(nothing=True)

    @classmethod
    def from_set(cls, labels: Mapping[str, str] | None) -> "LabelSelector":
        """``labels.SelectorFromSet``: each pair is an equality (Service/RC selectors)."""
        reqs = [new_requirement(k, EQUALS, (str(v),)) for k, v in (labels or {}).items()]
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any] | None) -> "LabelSelector":
        """``metav1.LabelSelectorAsSelector``: None matches nothing, ``{}`` everything.

        A plain ``{label: value}`` map (a Service's selector) is accepted too, when it has
        neither ``matchLabels`` nor ``matchExpressions``.
        """
        if selector is None:
            return cls.none()
        if not isinstance(selector, Mapping):
            raise ValueError(f"invalid label selector: {selector!r}")
        if selector and not ({"matchLabels", "matchExpressions"} & set(selector)):
            return cls.from_set(selector)
        reqs: list[Requirement] = []
        for k, v in (selector.get("matchLabels") or {}).items():
            reqs.append(new_requirement(k, EQUALS, (str(v),)))
        for expr in selector.get("matchExpressions") or []:
            operator = expr.get("operator")
            op = _EXPRESSION_OPS.get(operator)
            if op is None:
                raise ValueError(f'"{operator}" is not a valid label selector operator')
            reqs.append(new_requirement(expr.get("key") or "", op, expr.get("values") or ()))
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        """True for the match-everything selector."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        lbls = labels or {}
        return all(r.matches(lbls) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# --- field selectors -------------------------------------------------------------------


def _unescape(value: str) -> str:
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    if escaped:
        raise ValueError("invalid field selector: unterminated escape sequence")
    return "".join(out)


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have == self.value if self.op == "=" else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.op}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "FieldSelector":
        """Parse ``a=b,c!=d``; raises ValueError for terms without an operator."""
        reqs: list[FieldRequirement] = []
        if not text:
            return cls()
        for term in _split_unescaped(text, ","):
            if not term:
                continue
            for op, norm in (("!=", "!="), ("==", "="), ("=", "=")):
                idx = _find_unescaped(term, op)
                if idx >= 0:
                    field = term[:idx].strip()
                    if not field:
                        raise ValueError(f"invalid selector: '{text}'; can't understand "
                                         f"'{term}'")
                    reqs.append(FieldRequirement(field, norm, _unescape(term[idx + len(op):])))
                    break
            else:
                raise ValueError(f"invalid selector: '{text}'; can't understand '{term}'")
        return cls(tuple(reqs))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value required by a ``field=value`` term, for index lookups."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None

    def fields(self) -> set[str]:
        return {r.field for r in self.requirements}

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _find_unescaped(term: str, op: str) -> int:
    escaped = False
    for i, ch in enumerate(term):
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            continue
        if term.startswith(op, i):
            if op == "=" and i > 0 and term[i - 1] == "!":
                continue
            return i
    return -1


# --- the selectable fields of each kind (registry GetAttrs / SelectableFields) ------------


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_KIND_FIELDS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "Pod": (("spec.nodeName", ("spec", "nodeName")),
            ("spec.restartPolicy", ("spec", "restartPolicy")),
            ("spec.schedulerName", ("spec", "schedulerName")),
            ("spec.serviceAccountName", ("spec", "serviceAccountName")),
            ("spec.hostNetwork", ("spec", "hostNetwork")),
            ("status.phase", ("status", "phase")),
            ("status.podIP", ("status", "podIP")),
            ("status.nominatedNodeName", ("status", "nominatedNodeName"))),
    "Event": (("involvedObject.kind", ("involvedObject", "kind")),
              ("involvedObject.namespace", ("involvedObject", "namespace")),
              ("involvedObject.name", ("involvedObject", "name")),
              ("involvedObject.uid", ("involvedObject", "uid")),
              ("involvedObject.apiVersion", ("involvedObject", "apiVersion")),
              ("involvedObject.resourceVersion", ("involvedObject", "resourceVersion")),
              ("involvedObject.fieldPath", ("involvedObject", "fieldPath")),
              ("reason", ("reason",)),
              ("reportingComponent", ("reportingComponent",)),
              ("source", ("source", "component")),
              ("type", ("type",))),
    "Node": (("spec.unschedulable", ("spec", "unschedulable")),),
    "Secret": (("type", ("type",)),),
    "Namespace": (("status.phase", ("status", "phase")),),
    "ReplicaSet": (("status.replicas", ("status", "replicas")),),
    "ReplicationController": (("status.replicas", ("status", "replicas")),),
    "Job": (("status.successful", ("status", "succeeded")),),
    "CertificateSigningRequest": (("spec.signerName", ("spec", "signerName")),),
}


def object_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The field-selector view of an object: metadata.name/namespace plus per-kind fields."""
    md = obj.get("metadata") or {}
    fields = {"metadata.name": _s(md.get("name")), "metadata.namespace": _s(md.get("namespace"))}
    for field, path in _KIND_FIELDS.get(kind, ()):
        value = _get(obj, *path)
        if kind == "Node" and field == "spec.unschedulable":
            value = bool(value)
        fields[field] = _s(value)
    return fields


def supported_fields(kind: str) -> set[str]:
    return {"metadata.name", "metadata.namespace", *(f for f, _ in _KIND_FIELDS.get(kind, ()))}


# --- node selectors (core/v1 NodeSelector, used by node affinity) -------------------------


def _expression_matches(expr: Mapping[str, Any], value: str | None) -> bool:
    """One NodeSelectorRequirement against a label/field value (None = absent)."""
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(values) != 1:
            return False
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_term_matches(term: Mapping[str, Any] | None,
                               node: Mapping[str, Any]) -> bool:
    """A NodeSelectorTerm: all expressions and fields must match; an empty term matches none."""
    if not term:
        return False
    exprs = term.get("matchExpressions") or []
    field_exprs = term.get("matchFields") or []
    if not exprs and not field_exprs:
        return False
    node_labels = (node.get("metadata") or {}).get("labels") or {}
    for expr in exprs:
        if not _expression_matches(expr, node_labels.get(expr.get("key", ""))):
            return False
    node_name = (node.get("metadata") or {}).get("name")
    for expr in field_exprs:
        if expr.get("key") != "metadata.name" or expr.get("operator") not in ("In", "NotIn"):
            return False
        if len(expr.get("values") or []) != 1:
            return False
        if not _expression_matches(expr, node_name):
            return False
    return True


def node_selector_matches(selector: Mapping[str, Any] | None, node: Mapping[str, Any]) -> bool:
    """A NodeSelector: its terms are ORed; no terms match no node."""
    if not selector:
        return False
    return any(node_selector_term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])


def node_labels_match(node_selector: Mapping[str, str] | None, node: Mapping[str, Any]) -> bool:
    """A pod's plain ``spec.nodeSelector`` map against the node's labels."""
    node_labels = (node.get("metadata") or {}).get("labels") or {}
    return all(node_labels.get(k) == v for k, v in (node_selector or {}).items())
