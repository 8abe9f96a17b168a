"""A schema-compiled Avro record walker: finds the fields an alert needs without decoding the rest.

One concern: reading the fields an alert needs from Avro record bytes by a writer schema compiled once
(the walker, and the compiled decoder of flat records), for :func:`alertlib.io.packets.iter_avro_records`.

An alert packet is mostly history (``prv_candidates``: 30 to 1000 past detections of about 100
fields each) and three gzipped cutouts. Turning it into a triplet needs the cutouts, the current
candidate and a few top-level scalars, but an Avro record has no index: to reach the cutouts every
byte before them has to be parsed, and a general-purpose decoder (fastavro) builds or at least walks
each history entry field by field through Python-facing code (about 250 us per ZTF alert here).

This module compiles a writer schema once into flat arrays (one node per schema position; named types
are expanded where they are used, so a type that occurs both in a history and at the top level is two
nodes) and walks records with a small loop compiled by numba. The walk only moves a byte position:
varints are skipped, strings and bytes jumped over. It records the byte range of

- every top-level field (so consecutive fields that are needed can be decoded by fastavro from their
  slice alone, with exactly the same values as a full decode), and
- the stamp bytes inside each cutout field (``cutoutScience``: ``{fileName, stampData}`` for ZTF and
  ATLAS, plain ``bytes`` for Rubin), which are then sliced without any decode at all.

Every read is bounds-checked: a record that runs past its block, a varint longer than 10 bytes, a
negative length or a union branch that does not exist stops the walk with a status that the caller
turns into a skip reason. A schema this walker cannot compile (recursive named types) raises
:class:`UnsupportedSchema`; the caller then falls back to fastavro.

The walker pays for itself: ``benchmarks/bench_avro_walker.py`` decodes ZTF packets with it and with
fastavro's projected reader (the path without it) in one run (``data/benchmarks/decode/avro-walker_*.csv``).
numba is imported with this module, which :mod:`alertlib.io.packets` imports only when it first reads an
Avro file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numba
import numpy as np

from alertlib.core.jit import kernel

# Node kinds. Primitives first: everything up to FIXED is skipped inline.
NULL, BOOLEAN, VARINT, FLOAT, DOUBLE, BYTES, FIXED, RECORD, UNION, ARRAY, MAP = range(11)
_PRIMITIVES = {
    "null": NULL,
    "boolean": BOOLEAN,
    "int": VARINT,
    "long": VARINT,
    "float": FLOAT,
    "double": DOUBLE,
    "bytes": BYTES,
    "string": BYTES,
}

# Walk status codes.
OK, TRUNCATED, CORRUPT = 0, 1, 2
_MAX_DEPTH = 256


class UnsupportedSchema(ValueError):
    """A schema the walker cannot compile (recursive named types, unknown names)."""


# A block of items must fit in the bytes left (each item is at least ``arg`` bytes, its minimum
# width); items of no width (nulls) are capped instead: a corrupt count must not walk for ever.
_MAX_EMPTY_ITEMS = 1 << 20


# The walk's loop and its steps are compiled without numba's reference counting (``_nrt=False``;
# they allocate nothing), and the steps into the loop itself (``inline="always"``): counting the
# references of the packet's bytes at every step, or calling each step, made the walk 1.4 to 1.9 times
# slower than one function (measured). _walk, a kernel, allocates the stacks and calls the loop.
_without_reference_counts = numba.njit(nogil=True, _nrt=False)
_step = numba.njit(nogil=True, _nrt=False, inline="always")


@_step
def _read_varint(buf, pos, end):
    """The zig-zag varint at ``pos``: (status, value, next position)."""
    value = 0
    shift = 0
    while True:
        if pos >= end:
            return TRUNCATED, 0, pos
        byte = buf[pos]
        pos += 1
        value |= np.int64(byte & 127) << shift
        if byte < 128:
            break
        shift += 7
        if shift > 63:
            return CORRUPT, 0, pos
    return OK, (value >> 1) ^ -(value & 1), pos


@_step
def _skip_primitive(buf, pos, end, k, width):
    """Jump over a value of primitive kind ``k`` (FIXED: ``width`` bytes): (status, content start, end).

    The content start is where a BYTES value's content begins, after its length.
    """
    if k == BOOLEAN:
        pos += 1
    elif k == VARINT:
        status, _, pos = _read_varint(buf, pos, end)
        if status != OK:
            return status, pos, pos
    elif k == FLOAT:
        pos += 4
    elif k == DOUBLE:
        pos += 8
    elif k == BYTES:
        status, length, pos = _read_varint(buf, pos, end)
        if status != OK:
            return status, pos, pos
        if length < 0:
            return CORRUPT, pos, pos
        start = pos
        pos += length
        return (TRUNCATED if pos > end else OK), start, pos
    elif k == FIXED:
        pos += width
    return (TRUNCATED if pos > end else OK), pos, pos


@_step
def _read_block_count(buf, pos, end, width):
    """The item count of an array or map block at ``pos``: (status, count, next position).

    A negative count is followed by the block's size in bytes, jumped. A count that cannot fit in the
    bytes left (each item takes at least ``width`` bytes), or a huge count of items of no width, stops
    the walk: a corrupt count must not walk for ever.
    """
    status, count, pos = _read_varint(buf, pos, end)
    if status == OK and count < 0:
        count = -count
        status, _, pos = _read_varint(buf, pos, end)
    if status != OK:
        return status, 0, pos
    if (width > 0 and count > (end - pos) // width) or (width == 0 and count > _MAX_EMPTY_ITEMS):
        return (TRUNCATED if width > 0 else CORRUPT), 0, pos
    return OK, count, pos


@kernel
def _walk(buf, n_records, kind, arg, first, count, children, slot, out):
    """Walk ``n_records`` records of the root node (0) from byte 0 of ``buf``.

    ``out[r, s]`` receives the (start, end) byte range of the node with slot ``s`` in record ``r``
    (for BYTES nodes with ``arg`` 1, the content without its length prefix); ranges of nodes not
    visited stay -1.
    Returns (status, records walked completely, byte position reached).
    """
    stack_node = np.empty(_MAX_DEPTH, np.int64)
    stack_state = np.empty(_MAX_DEPTH, np.int64)  # a record's field index, or the items left in a block
    return _walk_records(buf, n_records, kind, arg, first, count, children, slot, out, stack_node, stack_state)


@_without_reference_counts
def _walk_records(buf, n_records, kind, arg, first, count, children, slot, out, stack_node, stack_state):
    """:func:`_walk`'s loop. A primitive is jumped over at once; a record, a union branch (when the
    union's range is recorded) or an array or map block is pushed on the stack, its children walked,
    and it is popped when nothing is left of it."""
    end = buf.shape[0]
    pos = 0
    for r in range(n_records):
        depth = 0
        node = 0
        while node >= 0 or depth > 0:
            if node >= 0:  # start walking node
                k = kind[node]
                s = slot[node]
                if s >= 0:
                    out[r, s, 0] = pos
                if k <= FIXED:
                    status, start, pos = _skip_primitive(buf, pos, end, k, arg[node])
                    if status != OK:
                        return status, r, pos
                    if s >= 0:
                        if k == BYTES and arg[node] == 1:  # a stamp: its content, not its length
                            out[r, s, 0] = start
                        out[r, s, 1] = pos
                    node = -1
                    continue
                status = OK
                state = 0
                branch = 0
                if k == RECORD:
                    items = count[node]
                elif k == UNION:
                    status, branch, pos = _read_varint(buf, pos, end)
                    if status == OK and (branch < 0 or branch >= count[node]):
                        status = CORRUPT
                    elif s < 0:  # no range to close after the branch: walk the branch in its place
                        node = children[first[node] + branch]
                        continue
                    items = 1
                else:  # ARRAY, MAP (whose item is a synthetic key-value record)
                    status, items, pos = _read_block_count(buf, pos, end, arg[node])
                    state = items
                if status != OK:
                    return status, r, pos
                if items == 0:
                    if s >= 0:
                        out[r, s, 1] = pos
                    node = -1
                    continue
                if depth >= _MAX_DEPTH:
                    return CORRUPT, r, pos
                stack_node[depth] = node
                stack_state[depth] = state
                depth += 1
                node = children[first[node] + branch]
                continue
            # a child of the node on top of the stack ended: its next child, or pop it
            parent = stack_node[depth - 1]
            k = kind[parent]
            if k == RECORD:
                index = stack_state[depth - 1] + 1
                if index < count[parent]:
                    stack_state[depth - 1] = index
                    node = children[first[parent] + index]
                    continue
            elif k != UNION:  # ARRAY or MAP
                remaining = stack_state[depth - 1] - 1
                if remaining == 0:  # the next block's count
                    status, remaining, pos = _read_block_count(buf, pos, end, arg[parent])
                    if status != OK:
                        return status, r, pos
                if remaining > 0:
                    stack_state[depth - 1] = remaining
                    node = children[first[parent]]
                    continue
            depth -= 1
            s = slot[parent]
            if s >= 0:
                out[r, s, 1] = pos
    return OK, n_records, pos


# ---------------------------------------------------------------------------------------------
# Compiling a schema
# ---------------------------------------------------------------------------------------------


@dataclass
class TopField:
    """How the reader gets one top-level field: ``decode`` (from its byte range: a compiled loop for
    flat fields, fastavro for the others), ``stamp`` (the cutout's stamp bytes, sliced), or ``skip``
    (a history: None or an empty list)."""

    name: str
    mode: str
    slot: int
    stamp_slot: int = -1
    null_branches: tuple[int, ...] = ()
    empty: object = None


class Program:
    """A compiled writer schema: flat node arrays for the walker, and how to read each top-level field."""

    def __init__(self, schema: dict, needed: frozenset[str], stamp_fields: frozenset[str]):
        if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
            raise UnsupportedSchema("the top-level schema is not a record")
        self.record_name = _fullname(schema["name"], schema.get("namespace", ""))
        self._definitions: dict[str, tuple[dict, str]] = {}
        _register(schema, "", self._definitions)
        self.kind: list[int] = []
        self.arg: list[int] = []
        self.first: list[int] = []
        self.count: list[int] = []
        self.children: list[int] = []
        self.slot: list[int] = []
        self.n_slots = 0
        self.fields: list[TopField] = []
        self.field_types: list = []  # each top-level field's type, expanded with full names
        namespace = schema.get("namespace", "") or _namespace_of(schema["name"])
        root = self._node(RECORD)
        field_nodes = []
        for f in schema["fields"]:
            node = self._compile(f["type"], namespace, ())
            field_nodes.append(node)
            top = TopField(name=f["name"], mode="decode", slot=self._new_slot(node))
            resolved = self._resolve(f["type"], namespace)
            if f["name"] in stamp_fields:
                stamp = self._stamp_node(node, resolved)
                if stamp is not None:
                    top.mode = "stamp"
                    self.arg[stamp] = 1  # BYTES nodes with arg 1 record their content's range
                    top.stamp_slot = top.slot if stamp == node else self._new_slot(stamp)
            elif f["name"] not in needed and self._is_history(node):
                top.mode = "skip"
                branches = self._branches(node)
                top.null_branches = tuple(i for i, b in enumerate(branches) if self.kind[b] == NULL)
                top.empty = {} if any(self.kind[b] == MAP for b in branches) else []
            self.fields.append(top)
            self.field_types.append(resolved)
        self._set_children(root, field_nodes)
        self.arrays = tuple(
            np.asarray(values, dtype=np.int64)
            for values in (self.kind, self.arg, self.first, self.count, self.children, self.slot)
        )
        self._readers: dict[tuple[int, int], object] = {}

    # -- building nodes ------------------------------------------------------------------------
    def _node(self, kind: int, arg: int = 0) -> int:
        self.kind.append(kind)
        self.arg.append(arg)
        self.first.append(0)
        self.count.append(0)
        self.slot.append(-1)
        return len(self.kind) - 1

    def _set_children(self, node: int, nodes: list[int]) -> None:
        self.first[node] = len(self.children)
        self.count[node] = len(nodes)
        self.children.extend(nodes)

    def _new_slot(self, node: int) -> int:
        self.slot[node] = self.n_slots
        self.n_slots += 1
        return self.slot[node]

    def _compile(self, schema, namespace: str, active: tuple[str, ...]) -> int:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self._node(_PRIMITIVES[schema])
            name = self._lookup(schema, namespace)
            if name in active:
                raise UnsupportedSchema(f"the named type {name} contains itself")
            definition, defined_in = self._definitions[name]
            return self._compile(definition, defined_in, active)
        if isinstance(schema, list):
            node = self._node(UNION)
            self._set_children(node, [self._compile(branch, namespace, active) for branch in schema])
            return node
        if not isinstance(schema, dict) or "type" not in schema:
            raise UnsupportedSchema(f"not a schema: {str(schema)[:80]}")
        kind = schema["type"]
        if kind in ("record", "error"):
            name = _fullname(schema["name"], schema.get("namespace", namespace))
            inner = _namespace_of(name)
            node = self._node(RECORD)
            nodes = [self._compile(f["type"], inner, (*active, name)) for f in schema["fields"]]
            self._set_children(node, nodes)
            return node
        if kind == "enum":
            return self._node(VARINT)
        if kind == "fixed":
            return self._node(FIXED, int(schema["size"]))
        if kind == "array":
            node = self._node(ARRAY)
            items = self._compile(schema["items"], namespace, active)
            self._set_children(node, [items])
            self.arg[node] = self._min_width(items)  # the walker's check on block counts
            return node
        if kind == "map":
            node = self._node(MAP)
            entry = self._node(RECORD)  # a map entry is a string key followed by the value
            self._set_children(entry, [self._node(BYTES), self._compile(schema["values"], namespace, active)])
            self._set_children(node, [entry])
            self.arg[node] = self._min_width(entry)
            return node
        return self._compile(kind, namespace, active)  # {"type": "long", "logicalType": ...} and the like

    def _min_width(self, node: int) -> int:
        """The fewest bytes a value of this node can take."""
        kind = self.kind[node]
        if kind in (BOOLEAN, VARINT, BYTES, ARRAY, MAP):
            return 1
        if kind in (FLOAT, DOUBLE, FIXED):
            return {FLOAT: 4, DOUBLE: 8, FIXED: self.arg[node]}[kind]
        children = self.children[self.first[node] : self.first[node] + self.count[node]]
        if kind == RECORD:
            return sum(self._min_width(child) for child in children)
        if kind == UNION:
            return 1 + min((self._min_width(child) for child in children), default=0)
        return 0  # NULL

    def _lookup(self, name: str, namespace: str) -> str:
        for candidate in (name, _fullname(name, namespace)):
            if candidate in self._definitions:
                return candidate
        raise UnsupportedSchema(f"unknown type name {name!r}")

    def _branches(self, node: int) -> list[int]:
        if self.kind[node] != UNION:
            return [node]
        return self.children[self.first[node] : self.first[node] + self.count[node]]

    def _is_history(self, node: int) -> bool:
        branches = self._branches(node)
        return any(self.kind[b] in (ARRAY, MAP) for b in branches) and all(
            self.kind[b] in (ARRAY, MAP, NULL) for b in branches
        )

    def _stamp_node(self, node: int, resolved) -> int | None:
        """The BYTES node holding a cutout's stamp: the field itself, a union branch, or a record
        branch's ``stampData`` field (ZTF, ATLAS); None when the field has none of these shapes."""
        types = resolved if isinstance(resolved, list) else [resolved]
        for branch, schema in zip(self._branches(node), types, strict=True):
            if self.kind[branch] == BYTES:
                return branch
            if self.kind[branch] != RECORD or not isinstance(schema, dict):
                continue
            for index, f in enumerate(schema["fields"]):
                if f["name"] == "stampData":
                    child = self.children[self.first[branch] + index]
                    for inner in self._branches(child):
                        if self.kind[inner] == BYTES:
                            return inner
        return None

    # -- the fastavro side -----------------------------------------------------------------------
    def _resolve(self, schema, namespace: str, active: tuple[str, ...] = ()):
        """The schema with every named reference replaced by its definition (full names throughout)."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema
            name = self._lookup(schema, namespace)
            definition, defined_in = self._definitions[name]
            return self._resolve(definition, defined_in, active)
        if isinstance(schema, list):
            return [self._resolve(branch, namespace, active) for branch in schema]
        kind = schema["type"]
        out = {k: v for k, v in schema.items() if k not in ("doc", "aliases", "namespace")}
        if kind in ("record", "error"):
            name = _fullname(schema["name"], schema.get("namespace", namespace))
            out["name"] = name
            out["fields"] = [
                {"name": f["name"], "type": self._resolve(f["type"], _namespace_of(name), (*active, name))}
                for f in schema["fields"]
            ]
        elif kind in ("enum", "fixed"):
            out["name"] = _fullname(schema["name"], schema.get("namespace", namespace))
        elif kind == "array":
            out["items"] = self._resolve(schema["items"], namespace, active)
        elif kind == "map":
            out["values"] = self._resolve(schema["values"], namespace, active)
        elif kind not in _PRIMITIVES:
            return self._resolve(kind, namespace, active)
        return out

    def reader(self, start: int, stop: int):
        """A fastavro-parsed record schema of the top-level fields ``start:stop`` (cached)."""
        key = (start, stop)
        if key not in self._readers:
            from fastavro import parse_schema

            emitted: set[str] = set()
            fields = [
                {"name": self.fields[i].name, "type": _define_once(self.field_types[i], emitted)}
                for i in range(start, stop)
            ]
            self._readers[key] = parse_schema(
                {"type": "record", "name": f"alertlib.io.avrofast.fields_{start}_{stop}", "fields": fields}
            )
        return self._readers[key]


def _define_once(schema, emitted: set[str]):
    """A resolved schema with each named type defined at its first occurrence and referenced after."""
    if isinstance(schema, list):
        return [_define_once(branch, emitted) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    name = schema.get("name")
    if name is not None and schema["type"] in ("record", "error", "enum", "fixed"):
        if name in emitted:
            return name
        emitted.add(name)
    out = dict(schema)
    if "fields" in out:
        out["fields"] = [{**f, "type": _define_once(f["type"], emitted)} for f in out["fields"]]
    if "items" in out:
        out["items"] = _define_once(out["items"], emitted)
    if "values" in out:
        out["values"] = _define_once(out["values"], emitted)
    return out


def _fullname(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _namespace_of(fullname: str) -> str:
    return fullname.rsplit(".", 1)[0] if "." in fullname else ""


def _register(schema, namespace: str, found: dict) -> None:
    """Every named type's definition and the namespace its references resolve in."""
    if isinstance(schema, list):
        for branch in schema:
            _register(branch, namespace, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            name = _fullname(schema["name"], schema.get("namespace", namespace))
            found.setdefault(name, (schema, _namespace_of(name)))
            if kind != "enum" and kind != "fixed":
                for f in schema.get("fields", ()):
                    _register(f["type"], _namespace_of(name), found)
        elif kind == "array":
            _register(schema["items"], namespace, found)
        elif kind == "map":
            _register(schema["values"], namespace, found)
        elif isinstance(kind, (dict, list)):
            _register(kind, namespace, found)


def compile_schema(schema_json: bytes | str | dict, needed=(), stamp_fields=()) -> Program:
    """Compile a writer schema; ``needed`` top-level fields are never skipped, ``stamp_fields`` sliced."""
    schema = json.loads(schema_json) if isinstance(schema_json, (bytes, str)) else schema_json
    try:
        return Program(schema, frozenset(needed), frozenset(stamp_fields))
    except UnsupportedSchema:
        raise
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise UnsupportedSchema(f"{type(error).__name__}: {error}") from error


def walk(program: Program, block: bytes, n_records: int) -> tuple[int, int, np.ndarray]:
    """Walk ``n_records`` records of a decompressed block: (status, records complete, ranges).

    ``ranges[r, slot]`` is the (start, end) byte range of each slot in record ``r``, -1 where unvisited.
    """
    out = np.full((max(n_records, 0), program.n_slots, 2), -1, dtype=np.int64)
    status, complete, _ = _walk(np.frombuffer(block, dtype=np.uint8), n_records, *program.arrays, out)
    return int(status), int(complete), out


# ---------------------------------------------------------------------------------------------
# Flat records: decoded by a compiled loop instead of fastavro
# ---------------------------------------------------------------------------------------------
# A run of top-level fields that are primitives, unions of primitives, or records of those (ZTF's
# ``candidate``, Rubin's ``diaSource``) is a flat list of leaves. One compiled call decodes every
# leaf into typed arrays; Python then builds the same dict fastavro would (same keys, order, types).
_LEAF_KINDS = {"null": NULL, "boolean": BOOLEAN, "int": VARINT, "long": VARINT, "float": FLOAT, "double": DOUBLE}
STRING = 11  # a leaf kind only: BYTES decoded as UTF-8


def _leaf_branches(schema) -> list[int] | None:
    """Kinds of a primitive or a union of primitives; None for anything else (logical types too)."""
    members = schema if isinstance(schema, list) else [schema]
    kinds = []
    for member in members:
        if member == "string":
            kinds.append(STRING)
        elif member == "bytes":
            kinds.append(BYTES)
        elif isinstance(member, str) and member in _LEAF_KINDS:
            kinds.append(_LEAF_KINDS[member])
        else:
            return None
    return kinds


@dataclass
class FlatRun:
    """How to decode a run of top-level fields as leaves (see :func:`flat_run`)."""

    shape: list  # per field: (name, leaf) or (name, header leaf or -1, field names, first leaf)
    leaf_first: np.ndarray  # per leaf: its first branch in branch_kind
    leaf_count: np.ndarray  # per leaf: its number of branches
    leaf_span: np.ndarray  # per leaf: leaves of the record it heads (a nullable record), else 0
    branch_kind: np.ndarray

    def decode(self, buf: np.ndarray, block: bytes, start: int, end: int) -> dict:
        """The fields as fastavro decodes them, from ``block[start:end]`` (``buf`` is its uint8 view).

        Raises ValueError (a corrupt or truncated run) or UnicodeDecodeError (a bad string).
        """
        n = self.leaf_first.shape[0]
        tags = np.zeros(n, dtype=np.int64)
        ints = np.zeros(n, dtype=np.int64)
        floats = np.zeros(n, dtype=np.float64)
        status, pos = _decode_leaves(
            buf, start, end, self.leaf_first, self.leaf_count, self.leaf_span, self.branch_kind, tags, ints, floats
        )
        if status != OK or pos != end:
            raise ValueError("truncated" if status == TRUNCATED else "corrupt")
        values = floats.tolist()
        other = np.flatnonzero((tags != FLOAT) & (tags != DOUBLE)).tolist()
        if other:
            tag_list = tags.tolist()
            int_list = ints.tolist()
            for i in other:
                tag = tag_list[i]
                if tag == VARINT:
                    values[i] = int_list[i]
                elif tag == STRING:
                    values[i] = block[int_list[i] : int(values[i])].decode("utf-8")
                elif tag == BYTES:
                    values[i] = block[int_list[i] : int(values[i])]
                elif tag == BOOLEAN:
                    values[i] = int_list[i] == 1
                else:  # NULL, the header of a present nullable record, the leaves of an absent one
                    values[i] = None
        record = {}
        for entry in self.shape:
            if len(entry) == 2:
                record[entry[0]] = values[entry[1]]
                continue
            name, header, names, first = entry
            if header >= 0 and tags[header] == NULL:
                record[name] = None
            else:
                record[name] = dict(zip(names, values[first : first + len(names)], strict=True))
        return record


def flat_run(field_names: list[str], field_types: list) -> FlatRun | None:
    """A :class:`FlatRun` for these top-level fields (resolved schemas), or None when one is not flat.

    Flat: a primitive (no logical type), a union of primitives, or a record of those, or a union of
    null and such a record. Each primitive is one leaf; a nullable record has a header leaf whose
    branch is null or the record (and then its fields' leaves follow).
    """
    shape: list = []
    branches: list[list[int]] = []
    spans: list[int] = []
    for name, schema in zip(field_names, field_types, strict=True):
        kinds = _leaf_branches(schema)
        if kinds is not None:
            shape.append((name, len(branches)))
            branches.append(kinds)
            spans.append(0)
            continue
        members = schema if isinstance(schema, list) else [schema]
        records = [m for m in members if isinstance(m, dict) and m.get("type") == "record"]
        others = [m for m in members if not (isinstance(m, dict) and m.get("type") == "record")]
        if len(records) != 1 or any(m != "null" for m in others) or len(others) > 1:
            return None
        sub = [_leaf_branches(f["type"]) for f in records[0]["fields"]]
        if any(kinds is None for kinds in sub):
            return None
        header = -1
        if isinstance(schema, list):
            header = len(branches)
            branches.append([NULL if m == "null" else RECORD for m in schema])
            spans.append(len(sub))
        shape.append((name, header, [f["name"] for f in records[0]["fields"]], len(branches)))
        branches.extend(sub)
        spans.extend([0] * len(sub))
    counts = [len(b) for b in branches]
    return FlatRun(
        shape=shape,
        leaf_first=np.asarray(np.cumsum([0] + counts[:-1]), dtype=np.int64),
        leaf_count=np.asarray(counts, dtype=np.int64),
        leaf_span=np.asarray(spans, dtype=np.int64),
        branch_kind=np.asarray([k for b in branches for k in b], dtype=np.int64),
    )


@kernel
def _decode_leaves(buf, pos, end, leaf_first, leaf_count, leaf_span, branch_kind, tags, ints, floats):
    """Decode leaves from ``pos``: the branch kind taken (``tags``), integer values (and the start of
    strings) in ``ints``, float values (and the end of strings) in ``floats``. Returns (status, pos).

    The leaves of a nullable record whose header took the null branch keep tag NULL.
    """
    leaf = 0
    n = leaf_first.shape[0]
    while leaf < n:
        branch = 0
        if leaf_count[leaf] > 1:
            status, branch, pos = _read_varint(buf, pos, end)
            if status != OK:
                return status, pos
            if branch < 0 or branch >= leaf_count[leaf]:
                return CORRUPT, pos
        k = branch_kind[leaf_first[leaf] + branch]
        tags[leaf] = k
        if k == NULL and leaf_span[leaf] > 0:
            leaf += leaf_span[leaf]  # an absent record: its leaves stay NULL
        elif k == BOOLEAN:
            if pos >= end:
                return TRUNCATED, pos
            ints[leaf] = 1 if buf[pos] != 0 else 0
            pos += 1
        elif k == VARINT or k == BYTES or k == STRING:
            status, value, pos = _read_varint(buf, pos, end)
            if status != OK:
                return status, pos
            if k == VARINT:
                ints[leaf] = value
            else:
                if value < 0:
                    return CORRUPT, pos
                if pos + value > end:
                    return TRUNCATED, pos
                ints[leaf] = pos
                floats[leaf] = pos + value
                pos += value
        elif k == FLOAT:
            if pos + 4 > end:
                return TRUNCATED, pos
            floats[leaf] = np.float64(buf[pos : pos + 4].view(np.float32)[0])
            pos += 4
        elif k == DOUBLE:
            if pos + 8 > end:
                return TRUNCATED, pos
            floats[leaf] = buf[pos : pos + 8].view(np.float64)[0]
            pos += 8
        leaf += 1
    return OK, pos
