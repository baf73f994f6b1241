"""What codes the engine can write, read from its source with ``ast`` (for tests/test_labels.py).

A call's timeline is written through ``data.calls.add_event`` and every helper that passes its
``kind`` parameter on to it (``Call.event``, ``record.event``, ``log_for``...), found here by
following those parameters; the switchboard's Lua journal writes ``offered`` and ``widened``.
A task's timeline is written the same way through ``data.tasks._event`` (``add_event``,
``_move``, ``settle_offer``, the engine's ``settled``...), and a care call's through
``data.care._event`` (``add_event``, and ``settle``, whose kind is the state it is given:
``state.value``). They share function names (``add_event``), so a call through a module's
name (``task_store.add_event``) or of a name defined or imported in the calling module is
matched to that module's function only; a method call on an object (``call.event``) matches
any function of that name.
A value given as a variable is resolved from what is assigned to it in the same function, or,
when it is the function's parameter (or that parameter's enum ``.value``), from what its
callers pass; a value looked up in a module's constant dict (``OFFER_KEYS.get(digits)``) is
any of the dict's values; enum members are resolved from the enum classes of the engine.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ("ivr", "queue_workers", "data", "callflows")
# Lua inside switchboard.py: ``journal(sid, 'offered', ...)``.
LUA_JOURNAL = re.compile(r"journal\([^,()]+,\s*'([a-z_]+)'")
# (module, function name) -> positions of the followed parameter; module None: any module.
Writers = dict[tuple[str | None, str], set[int]]
CALL_EVENTS = "data.calls:add_event"
TASK_EVENTS = "data.tasks:_event"
TASK_MODULES = ("data.tasks", "queue_workers.tasks")
CARE_EVENTS = "data.care:_event"


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _key(seed: str) -> tuple[str | None, str]:
    """``"data.calls:add_event"`` -> (module, name); a bare name is any module's."""
    module, _, name = seed.rpartition(":")
    return module or None, name


def _params(fn: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _arg(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if position < len(call.args) and not isinstance(call.args[position], ast.Starred):
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _passed_on(arg: ast.expr | None) -> ast.expr | None:
    """``state.value`` given on is ``state`` (an enum member's value) for following it."""
    if isinstance(arg, ast.Attribute) and arg.attr == "value" and isinstance(arg.value, ast.Name):
        return arg.value
    return arg


def _assigned(fn: ast.AST, name: str) -> list[ast.expr]:
    """The expressions assigned to ``name`` in ``fn`` (plain, tuple unpacking, for loops)."""
    found: list[ast.expr] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    found.append(node.value)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = zip(target.elts, node.value.elts, strict=False)
                    found += [v for t, v in pairs if isinstance(t, ast.Name) and t.id == name]
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            found += [node.iter] if node.target.id == name else []
    return found


class Scan:
    """The engine's source, parsed once."""

    def __init__(self, trees: dict[Path, ast.Module]) -> None:
        self.trees = trees
        self.module_names = {
            path: ".".join(path.relative_to(ROOT).with_suffix("").parts) for path in trees
        }
        modules = set(self.module_names.values())
        self.functions = [
            n for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.FunctionDef)
        ]
        self.module_of = {
            fn: self.module_names[path]
            for path, tree in trees.items()
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef)
        }
        # Per module: names defined in it, and imported names -> (module, function or None).
        self.defined: dict[str, set[str]] = defaultdict(set)
        self.imports: dict[str, dict[str, tuple[str, str | None]]] = defaultdict(dict)
        # Module-level constant dicts (``OFFER_KEYS = {...}``), by name.
        self.tables: dict[str, list[ast.Dict]] = defaultdict(list)
        for path, tree in trees.items():
            here = self.module_names[path]
            for fn in tree.body:
                if isinstance(fn, ast.FunctionDef):
                    self.defined[here].add(fn.name)
                elif isinstance(fn, ast.Assign) and isinstance(fn.value, ast.Dict):
                    for target in fn.targets:
                        if isinstance(target, ast.Name):
                            self.tables[target.id].append(fn.value)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        full = f"{node.module}.{alias.name}"
                        found = (full, None) if full in modules else (node.module, alias.name)
                        self.imports[here][alias.asname or alias.name] = found
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.asname:
                            self.imports[here][alias.asname] = (alias.name, None)
        # Enum classes of the engine: name -> member -> value.
        self.enums: dict[str, dict[str, str]] = {}
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                    "Enum" in ast.unparse(base) for base in node.bases
                ):
                    self.enums[node.name] = {
                        t.id: stmt.value.value
                        for stmt in node.body
                        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                        for t in stmt.targets
                        if isinstance(t, ast.Name) and isinstance(stmt.value.value, str)
                    }

    @classmethod
    def engine(cls) -> Scan:
        """Every module of the engine (what writes timelines, alerts and their details)."""
        paths = [p for d in ENGINE for p in sorted((ROOT / d).rglob("*.py"))]
        return cls({p: ast.parse(p.read_text(encoding="utf-8")) for p in paths})

    def strings(self, node: ast.AST | None) -> set[str]:
        """The strings an expression can be: constants, enum members, either branch."""
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else set()
        if isinstance(node, ast.IfExp):
            return self.strings(node.body) | self.strings(node.orelse)
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.strings(v) for v in node.values))
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return set().union(*(self.strings(e) for e in node.elts))
        if isinstance(node, ast.Attribute):
            inner = node.value if node.attr == "value" else node
            if isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name):
                return {v for k, v in self.enums.get(inner.value.id, {}).items() if k == inner.attr}
        looked_up = None
        if isinstance(node, ast.Subscript):
            looked_up = node.value
        elif isinstance(node, ast.Call) and _name(node) == "get":
            looked_up = node.func.value  # type: ignore[attr-defined]
        if isinstance(looked_up, ast.Name):
            tables = self.tables.get(looked_up.id, [])
            return set().union(*(self.strings(v) for t in tables for v in t.values))
        return set()

    def target(self, module: str, call: ast.Call) -> tuple[str | None, str]:
        """The function a call in ``module`` reaches: (its module, or None if unknown, name)."""
        func, imported = call.func, self.imports.get(module, {})
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            found = imported.get(func.value.id)
            return (found[0] if found and found[1] is None else None), func.attr
        if isinstance(func, ast.Name):
            found = imported.get(func.id)
            if found and found[1] is not None:
                return found[0], found[1]
            return (module if func.id in self.defined.get(module, ()) else None), func.id
        return None, _name(call)

    def for_tasks(self, module: str, call: ast.Call) -> bool:
        """Whether the call reaches a function of ``TASK_MODULES``."""
        return self.target(module, call)[0] in TASK_MODULES

    @staticmethod
    def positions(writers: Writers, target: tuple[str | None, str]) -> set[int]:
        """The followed positions of the writers ``target`` may be."""
        module, name = target
        return set().union(
            *(
                where
                for (m, n), where in writers.items()
                if n == name and (m is None or module is None or m == module)
            )
        )

    def calls(self) -> list[tuple[str, tuple[str | None, str], ast.AST, ast.Call]]:
        """Every call: file:line, the function it reaches, the innermost function (or module)
        it is in, the call."""
        out: list[tuple[str, tuple[str | None, str], ast.AST, ast.Call]] = []

        def visit(node: ast.AST, where: str, module: str, scope: ast.AST) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Call):
                    out.append(
                        (f"{where}:{child.lineno}", self.target(module, child), scope, child)
                    )
                inner = child if isinstance(child, ast.FunctionDef) else scope
                visit(child, where, module, inner)

        for path, tree in self.trees.items():
            visit(tree, str(path.relative_to(ROOT)), self.module_names[path], tree)
        return out

    def writers(self, seeds: dict[str, set[int]], param: str) -> Writers:
        """``seeds`` (``"module:name"`` or a bare name) and every function passing one of its
        own parameters on to them (at the followed position, or as ``param=``):
        (module, name) -> positions of that parameter."""
        found: Writers = defaultdict(set, {_key(k): set(v) for k, v in seeds.items()})
        changed = True
        while changed:
            changed = False
            for fn in self.functions:
                params, module = _params(fn), self.module_of[fn]
                for node in ast.walk(fn):
                    if not isinstance(node, ast.Call):
                        continue
                    for position in self.positions(found, self.target(module, node)):
                        arg = _passed_on(_arg(node, position, param))
                        if isinstance(arg, ast.Name) and arg.id in params:
                            mine = params.index(arg.id)
                            if mine not in found[(module, fn.name)]:
                                found[(module, fn.name)].add(mine)
                                changed = True
        return dict(found)

    def written(self, seed: str, position: int, param: str) -> set[str]:
        """The strings given for ``param`` of ``seed``, directly or through helpers."""
        writers = self.writers({seed: {position}}, param)
        return {s for *_, arg in self.arguments(writers, param) for s in self.strings(arg)}

    def arguments(self, writers: Writers, param: str) -> list[tuple[str, ast.AST, ast.expr]]:
        """What each call of a writer gives for ``param`` (file:line, scope, expression);
        a local variable is replaced by what is assigned to it, a passed-on parameter is
        left to the callers."""
        out = []
        for where, target, scope, call in self.calls():
            for position in self.positions(writers, target):
                arg = _arg(call, position, param)
                if isinstance(arg, ast.Name) and isinstance(scope, ast.FunctionDef):
                    if arg.id not in _params(scope):
                        out += [(where, scope, value) for value in _assigned(scope, arg.id)]
                elif arg is not None:
                    out.append((where, scope, arg))
        return out

    def event_kinds(self, seed: str = CALL_EVENTS) -> dict[str, list[str]]:
        """Every kind of a timeline (a call's, ``TASK_EVENTS``, ``CARE_EVENTS``) the engine can
        write -> where."""
        kinds: dict[str, list[str]] = defaultdict(list)
        for where, _, arg in self.arguments(self.writers({seed: {2}}, "kind"), "kind"):
            for kind in self.strings(arg):
                kinds[kind].append(where)
        if seed == CALL_EVENTS:
            lua = (ROOT / "queue_workers" / "switchboard.py").read_text(encoding="utf-8")
            for kind in LUA_JOURNAL.findall(lua):
                kinds[kind].append("queue_workers/switchboard.py (journal)")
        return dict(kinds)

    def event_details(self, seed: str = CALL_EVENTS) -> dict[str, set[str]]:
        """Kind -> the keys of the details written with it (where the detail is a dict)."""
        keys: dict[str, set[str]] = defaultdict(set)
        kinds = self.writers({seed: {2}}, "kind")
        details = self.writers({seed: {3}}, "detail")
        for _, target, scope, call in self.calls():
            for position in self.positions(kinds, target):
                written = self.strings(_arg(call, position, "kind"))
                kind_arg = _arg(call, position, "kind")
                if isinstance(kind_arg, ast.Name) and isinstance(scope, ast.FunctionDef):
                    written |= {s for v in _assigned(scope, kind_arg.id) for s in self.strings(v)}
                for p in self.positions(details, target):
                    for detail in self._dicts(scope, _arg(call, p, "detail")):
                        for kind in written:
                            keys[kind] |= {
                                k.value for k in detail.keys if isinstance(k, ast.Constant)
                            }
        return dict(keys)

    def alert_kinds(self) -> set[str]:
        """Every kind of supervisor alert the engine can raise."""
        return self.written("data.calls:add_alert", 2, "kind")

    def values(self, key: str) -> set[str]:
        """The strings the engine can write under ``key`` in a dict (an event's or alert's
        detail) or pass as ``key=``: written there, assigned to the variable written there,
        or given by the callers of the function whose parameter is written there.

        A ``key=`` given to a task function (``TASK_MODULES``) is a task's field (its
        ``source=``), not a call's detail: not counted."""
        found: set[str] = set()
        carriers: dict[str, set[int]] = defaultdict(set)
        for fn in self.functions:
            params, module = _params(fn), self.module_of[fn]
            for node in ast.walk(fn):
                given = []
                if isinstance(node, ast.Dict):
                    given = [
                        v
                        for k, v in zip(node.keys, node.values, strict=True)
                        if isinstance(k, ast.Constant) and k.value == key
                    ]
                elif (
                    isinstance(node, ast.Call) and self.target(module, node)[0] not in TASK_MODULES
                ):
                    given = [k.value for k in node.keywords if k.arg == key]
                for value in given:
                    if isinstance(value, ast.Name) and value.id in params:
                        carriers[f"{module}:{fn.name}"].add(params.index(value.id))
                    elif isinstance(value, ast.Name):
                        found |= {s for v in _assigned(fn, value.id) for s in self.strings(v)}
                    else:
                        found |= self.strings(value)
        for *_, arg in self.arguments(self.writers(carriers, key), key):
            found |= self.strings(arg)
        return found

    def enum(self, name: str) -> set[str]:
        """The values of the engine's enum class ``name`` (none when there is no such class)."""
        return set(self.enums.get(name, {}).values())

    def _dicts(self, scope: ast.AST, node: ast.expr | None) -> list[ast.Dict]:
        if isinstance(node, ast.Dict):
            return [node]
        if isinstance(node, ast.Name) and isinstance(scope, ast.FunctionDef):
            return [v for v in _assigned(scope, node.id) if isinstance(v, ast.Dict)]
        return []
