"""Safe arithmetic expressions over raw columns, for derived columns such as a label.

Only numbers, column names, ``+ - * / %``, comparisons, ``and``/``or``/``not``
are allowed; a comparison yields int 0/1. A missing input yields a missing value.

Example:
    >>> expr = Expression("big_tipper", "tips > 0.2 * fare")
    >>> expr.columns
    ['tips', 'fare']
    >>> expr.evaluate({"tips": 3.0, "fare": 10.0})
    1
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Mod: operator.mod}
_COMPARE = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Eq: operator.eq, ast.NotEq: operator.ne}


class Expression:
    """A parsed, checked expression.

    Args:
        name: The derived column's name (used in error messages).
        source: The expression text.

    Raises:
        ValueError: on syntax errors or anything but the allowed operations.
    """

    def __init__(self, name: str, source: str):
        self.name, self.source = name, source
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as e:
            raise ValueError(
                f"Derived column {name!r} got expression={source!r}; it does not parse ({e.msg}). "
                "How to fix: write arithmetic/comparisons over column names, e.g. 'tips > 0.2 * fare'."
            ) from None
        self.columns: list[str] = []
        self._check(tree.body)
        self._tree = tree.body
        self.kind = "int" if isinstance(tree.body, (ast.Compare, ast.BoolOp)) or (
            isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)) else "float"

    def _check(self, node: ast.AST) -> None:
        allowed = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Name, ast.Constant)
        if not isinstance(node, allowed) or (
                isinstance(node, ast.BinOp) and type(node.op) not in _BINARY) or (
                isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops)) or (
                isinstance(node, ast.UnaryOp) and not isinstance(node.op, (ast.USub, ast.Not))) or (
                isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str))):
            raise ValueError(
                f"Derived column {self.name!r} got expression={self.source!r} using "
                f"{ast.unparse(node)!r}; expected only numbers, column names, + - * / %, comparisons, "
                "and/or/not. How to fix: simplify the expression or use a Transform module_file."
            )
        if isinstance(node, ast.Name) and node.id not in self.columns:
            self.columns.append(node.id)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.operator, ast.cmpop, ast.boolop, ast.unaryop, ast.expr_context)):
                self._check(child)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluates on one row; returns None if an input is missing or the math fails."""
        if any(values.get(c) is None for c in self.columns):
            return None
        try:
            result = _eval(self._tree, values)
        except (ZeroDivisionError, TypeError, ValueError):
            return None
        if isinstance(result, bool):
            return int(result)
        return result


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, values)
        return -value if isinstance(node.op, ast.USub) else not value
    if isinstance(node, ast.BoolOp):
        results = [_eval(v, values) for v in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    left = _eval(node.left, values)
    for op, comparator in zip(node.ops, node.comparators):
        right = _eval(comparator, values)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True
