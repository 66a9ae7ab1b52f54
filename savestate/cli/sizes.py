"""Where the bytes of a saved state go: a tree of sizes per unit and per field, printed with
percentages (``savestate show --sizes``) or drawn as an SVG treemap (``--svg FILE``).

The tree is read from the bytes themselves (every record's tag, length prefix and payload count)
and named from the wire plans of the types it knows: a field's proto name, a blob's type URL, a
unit's name. Bytes of a type not registered are still measured, by field number.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from ..codec.raw import RawField, decode_raw
from ..errors import DecodeError, EncodeError
from ..limits import DEFAULT_MAX_DEPTH
from ..model.plan import Form, Label, MessagePlan, MessageValue, plan_of
from ..model.registry import TYPE_URL_PREFIX, is_any, root_for_url

__all__ = ["SizeNode", "format_sizes", "size_tree", "treemap_svg"]

# Repeated messages with more elements than this are one node (with a count), not one per element.
MAX_ELEMENTS_SHOWN = 32


@dataclass
class SizeNode:
    """One part of the encoding: its label, its size in bytes (tag and length prefix included),
    and the parts it is made of."""

    label: str
    size: int
    children: list[SizeNode] = field(default_factory=list)


def size_tree(
    data: bytes,
    type_url: str,
    label: str = "state",
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    path: list[str] | None = None,
) -> SizeNode:
    """The size tree of ``data``, the encoded state of the type named by ``type_url``.

    The bytes are split into records once, nested blobs included, so the cost is in proportion
    to the input however deep the blobs nest. ``max_depth`` bounds the levels of messages
    walked, the state's own included and blobs expanded, counted as ``to_dict`` (and so
    ``savestate decode``) counts them; past it, an ``EncodeError`` as ``to_dict`` raises, at
    the field path below ``path`` (where ``data`` sits).
    """
    root = SizeNode(f"{label} ({_short(type_url)})" if type_url else label, len(data))
    where = list(path or [])
    cls = root_for_url(type_url) if type_url else None
    if cls is not None and max_depth <= 0:
        raise EncodeError(_TOO_DEEP_BLOBS, where)
    try:
        # Deep enough for every level the walk may enter: a message's records are one level of
        # raw nesting below its parent's, so none is split again.
        records = decode_raw(data, max_depth=max(max_depth, 0) + 2)
    except DecodeError:
        return root  # not protobuf bytes: one opaque block
    plan = plan_of(cls) if cls is not None else None
    if cls is not None:
        where.append(cls.__name__)
    root.children = _message_children(records, plan, max_depth - 1, where)
    return root


# As ``to_dict`` words them, so that ``show`` and ``decode`` refuse a state in the same words.
_TOO_DEEP = "nesting deeper than the limit (max_depth)"
_TOO_DEEP_BLOBS = "nesting deeper than the limit (max_depth), blobs expanded"


def _short(url: str) -> str:
    short = url.removeprefix("https://").removeprefix(TYPE_URL_PREFIX)
    # Control characters (a terminal's escape sequences) shown escaped, as a unit's name is.
    return short if short.isprintable() else repr(short)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _record_size(f: RawField) -> int:
    tag = _varint_size(f.number << 3 | f.wire)
    if f.wire == 0:
        value = f.value
        assert isinstance(value, int)
        return tag + _varint_size(value)
    if f.wire == 1:
        return tag + 8
    if f.wire == 5:
        return tag + 4
    return tag + _varint_size(f.size) + f.size  # from the offsets: the payload is not copied


def _message_children(
    records: list[RawField] | tuple[RawField, ...],
    plan: MessagePlan | None,
    left: int,
    path: list[str],
) -> list[SizeNode]:
    """The nodes of a message's records; ``left``: the levels its nested messages may take."""
    groups: dict[int, list[RawField]] = {}
    for f in records:
        groups.setdefault(f.number, []).append(f)
    nodes: list[SizeNode] = []
    for number, group in groups.items():
        fplan = plan.by_number.get(number) if plan is not None else None
        name = fplan.name if fplan is not None else f"field {number}"
        size = sum(_record_size(f) for f in group)
        node = SizeNode(name if len(group) == 1 else f"{name} ({len(group)} records)", size)
        inner = None
        if fplan is not None and isinstance(fplan.value, MessageValue):
            inner = fplan.value.message
        if fplan is not None and inner is not None and all(f.wire == 2 for f in group):
            here = [*path, fplan.pyname]
            repeated = fplan.label is Label.REPEATED
            if len(group) == 1:
                node.children = _payload_children(
                    group[0], inner, left, [*here, "[0]"] if repeated else here)
            elif len(group) <= MAX_ELEMENTS_SHOWN:
                node.children = [_element(i, f, inner, left, [*here, f"[{i}]"])
                                 for i, f in enumerate(group)]
        nodes.append(node)
    nodes.sort(key=lambda n: -n.size)
    return nodes


def _element(index: int, f: RawField, plan: MessagePlan, left: int, path: list[str]) -> SizeNode:
    label = f"[{index}]"
    name = next((x for x in f.message or () if x.number == 1 and x.wire == 2), None)
    name_field = plan.by_number.get(1)
    if name is not None and name_field is not None and name_field.name == "name":
        label += f" {name.text!r}"  # a state unit, or any record named by its first field
    return SizeNode(label, _record_size(f), _payload_children(f, plan, left, path))


def _payload_children(f: RawField, plan: MessagePlan, left: int, path: list[str]) -> list[SizeNode]:
    """The nodes of a nested message (one level, of the ``left`` its parent has), from the
    records its payload was split into with the rest."""
    if left <= 0 and plan.form is not Form.FOREIGN:
        raise EncodeError(_TOO_DEEP, path)
    left -= 1
    if plan.cls is not None and is_any(plan.cls):
        url = next((x.text or "" for x in f.message or () if x.number == 1), "")
        value = next((x for x in f.message or () if x.number == 2), None)
        nodes = [SizeNode("type_url", _record_size(x)) for x in f.message or () if x.number == 1]
        if value is not None:
            nodes.append(_blob_value(value, url, left, path))
        return sorted(nodes, key=lambda n: -n.size)
    if f.message is None:
        return []
    return _message_children(f.message, plan, left, path)


def _blob_value(value: RawField, url: str, left: int, path: list[str]) -> SizeNode:
    """The node of a blob's value: the state of the type its URL names, read from the records
    its bytes were already split into (the payload that did not split is one opaque block)."""
    node = SizeNode(f"value ({_short(url)})" if url else "value", _record_size(value))
    cls = root_for_url(url) if url else None
    if cls is not None and left <= 0:
        raise EncodeError(_TOO_DEEP_BLOBS, path)
    if value.message is not None:
        plan = plan_of(cls) if cls is not None else None
        where = [*path, cls.__name__] if cls is not None else path
        node.children = _message_children(value.message, plan, left - 1, where)
    return node


def format_sizes(root: SizeNode, total: int | None = None) -> list[str]:
    """The tree as lines: ``bytes  percent  label``, children indented under their parent."""
    whole = total or root.size or 1
    lines: list[str] = []

    def walk(node: SizeNode, depth: int) -> None:
        share = 100 * node.size / whole
        pad = "  " * depth
        lines.append(f"{node.size:>10}  {share:5.1f}%  {pad}{node.label}")
        for child in node.children:
            walk(child, depth + 1)

    walk(root, 0)
    return lines


def treemap_svg(root: SizeNode, width: int = 1200, height: int = 800) -> str:
    """An SVG treemap of the tree (slice and dice: each level splits its box across the other
    axis), each box with a tooltip giving its path, size and share; a browser opens it."""
    whole = root.size or 1
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
    ]
    palette = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")

    def box(node: SizeNode, x: float, y: float, w: float, h: float, depth: int, path: str) -> None:
        here = f"{path} / {node.label}" if path else node.label
        share = 100 * node.size / whole
        parts.append(
            f'<g><rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" '
            f'fill="{palette[depth % len(palette)]}" fill-opacity="{0.35 + 0.1 * (depth % 4):.2f}" '
            f'stroke="#ffffff" stroke-width="1" data-bytes="{node.size}">'
            f"<title>{html.escape(here)}: {node.size} bytes ({share:.1f}%)</title></rect>"
        )
        if w > 60 and h > 14:
            parts.append(
                f'<text x="{x + 3:.2f}" y="{y + 12:.2f}">{html.escape(node.label)} '
                f"{node.size} B</text>"
            )
        parts.append("</g>")
        children = [c for c in node.children if c.size > 0]
        inner = sum(c.size for c in children)
        if not children or inner == 0 or w < 4 or h < 4:
            return
        # Leave a band for the label; the children share the rest in proportion to their bytes.
        top = 16 if h > 40 else 0
        cx, cy, cw, ch = x + 2, y + top, w - 4, h - top - 2
        scale = min(1.0, inner / node.size) if node.size else 1.0
        horizontal = depth % 2 == 0
        offset = 0.0
        for child in children:
            part = child.size / inner * scale
            if horizontal:
                box(child, cx + offset * cw, cy, part * cw, ch, depth + 1, here)
            else:
                box(child, cx, cy + offset * ch, cw, part * ch, depth + 1, here)
            offset += part

    box(root, 0, 0, width, height, 0, "")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
