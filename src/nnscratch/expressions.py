"""Safe arithmetic expressions typed by a user, e.g. ``"x0**2 + x1**2"``.

``compile_expression`` parses the text with :mod:`ast`, checks every node
against a short whitelist (numbers, the named variables, ``+ - * / **``, unary
minus, a few NumPy functions and the constants ``pi`` and ``e``) and builds a
tree of small Python closures that evaluate it with NumPy. The user's string is
never passed to ``eval``, ``exec`` or ``compile``: text that is not plain
arithmetic is rejected with an :class:`~nnscratch.errors.ExpressionError` that
quotes the offending part.

The returned function follows the book's convention for functions of several
variables: ``f(x)`` reads ``x[0], x[1], ...``, so it works with
``numerical_gradient`` at one point and with ``numerical_gradient_batch`` on
arrays of points (``x[0]`` then holds every point's first coordinate). With a
single variable, ``f(x)`` receives the value itself, like the book's
``function_1(x) = 0.01*x**2 + 0.1*x``.
"""

from __future__ import annotations

import ast
import keyword
import warnings

import numpy as np

from nnscratch.errors import ExpressionError, ShapeError

__all__ = ["compile_expression", "Expression", "FUNCTIONS", "CONSTANTS", "MAX_LENGTH"]

# name -> (numpy function, number of arguments)
FUNCTIONS: dict[str, tuple] = {
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "arcsin": (np.arcsin, 1),
    "arccos": (np.arccos, 1),
    "arctan": (np.arctan, 1),
    "sinh": (np.sinh, 1),
    "cosh": (np.cosh, 1),
    "tanh": (np.tanh, 1),
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "log2": (np.log2, 1),
    "log10": (np.log10, 1),
    "sqrt": (np.sqrt, 1),
    "abs": (np.abs, 1),
    "sign": (np.sign, 1),
    "arctan2": (np.arctan2, 2),
    "hypot": (np.hypot, 2),
    "maximum": (np.maximum, 2),
    "minimum": (np.minimum, 2),
}
CONSTANTS: dict[str, float] = {"pi": float(np.pi), "e": float(np.e)}
MAX_LENGTH = 1000  # characters; a plotted formula is never longer
_MAX_DEPTH = 60  # nesting levels, far below Python's recursion limit

_BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
_OPERATOR_HINTS = {
    ast.BitXor: "'^' is not a power in Python: write x0**2, not x0^2",
    ast.FloorDiv: "'//' (integer division) is not supported: use '/'",
    ast.Mod: "'%' is not supported",
    ast.MatMult: "'@' is not supported",
}


class Expression:
    """A compiled, safe arithmetic expression; call it like the book's functions.

    Attributes
    ----------
    text : str
        The source text.
    variables : tuple of str
        Variable names; ``x[i]`` holds ``variables[i]``.
    """

    def __init__(self, text: str, variables: tuple[str, ...], evaluate):
        self.text = text
        self.variables = variables
        self._evaluate = evaluate
        self.__name__ = "expression"
        self.__doc__ = f"f({', '.join(variables)}) = {text}"

    def __call__(self, x):
        """Evaluate at ``x``.

        Parameters
        ----------
        x : float or ndarray
            One variable: the value(s) themselves. Several variables: an array
            whose axis 0 has one entry per variable, shape ``(D,)`` for one
            point or ``(D, *batch)`` for many.

        Returns
        -------
        float or ndarray
            A scalar for one point, shape ``batch`` for many.
        """
        if len(self.variables) == 1:
            values = (x,)
        else:
            n = len(self.variables)
            if np.ndim(x) == 0 or len(x) != n:
                raise ShapeError(
                    f"expression {self.text!r} takes {n} variables {self.variables}: x must have "
                    f"{n} entries on axis 0 (x[0] is {self.variables[0]}), got shape {np.shape(x)}"
                )
            values = tuple(x[i] for i in range(n))
        result = self._evaluate(values)
        # A constant (or a formula in fewer variables) still gives one value per point.
        target = np.shape(values[0])
        if np.shape(result) != target:
            result = np.broadcast_to(result, np.broadcast_shapes(np.shape(result), target)).copy()
        return result

    def __repr__(self):
        return f"Expression({self.text!r}, variables={self.variables!r})"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _segment(text: str, node: ast.AST) -> str:
    part = ast.get_source_segment(text, node)
    return _shorten(part) if part is not None else type(node).__name__


def _fail(text: str, node: ast.AST | None, what: str) -> ExpressionError:
    where = ""
    if node is not None and getattr(node, "col_offset", None) is not None:
        where = f" at column {node.col_offset + 1}: {_segment(text, node)!r}"
    return ExpressionError(
        f"{what}{where} in {_shorten(text)!r}. Allowed: numbers, the variables, + - * / ** and unary -, "
        f"the constants {', '.join(CONSTANTS)}, and the functions {', '.join(FUNCTIONS)}."
    )


class _Builder:
    """Checks each AST node against the whitelist and turns it into a closure."""

    def __init__(self, text: str, variables: tuple[str, ...]):
        self.text = text
        self.index_of = {name: i for i, name in enumerate(variables)}
        self.variables = variables

    def build(self, node: ast.AST, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise _fail(self.text, node, f"the expression is nested more than {_MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _fail(self.text, node, f"the constant {value!r} is not a real number")
            try:
                number = float(value)
            except OverflowError:
                number = float("inf")
            if not np.isfinite(number):
                raise _fail(self.text, node, "the number is too large for a float")
            return lambda values: number
        if isinstance(node, ast.Name):
            if node.id in self.index_of:
                i = self.index_of[node.id]
                return lambda values: values[i]
            if node.id in CONSTANTS:
                number = CONSTANTS[node.id]
                return lambda values: number
            if node.id in FUNCTIONS:
                raise _fail(self.text, node, f"the function {node.id!r} must be called, e.g. {node.id}(x0)")
            raise _fail(
                self.text, node, f"unknown name {node.id!r} (the variables are {', '.join(self.variables)})"
            )
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                hint = _OPERATOR_HINTS.get(type(node.op), f"the operator {type(node.op).__name__} is not allowed")
                raise _fail(self.text, node, hint)
            left = self.build(node.left, depth + 1)
            right = self.build(node.right, depth + 1)
            return lambda values: op(left(values), right(values))
        if isinstance(node, ast.UnaryOp):
            op = _UNARY.get(type(node.op))
            if op is None:
                raise _fail(self.text, node, f"the unary operator {type(node.op).__name__} is not allowed")
            operand = self.build(node.operand, depth + 1)
            return lambda values: op(operand(values))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        kinds = {
            ast.Attribute: "attribute access",
            ast.Lambda: "a lambda",
            ast.Compare: "a comparison",
            ast.BoolOp: "'and'/'or'",
            ast.IfExp: "'if ... else'",
            ast.List: "a list",
            ast.Tuple: "a tuple",
            ast.Dict: "a dict",
            ast.JoinedStr: "an f-string",
            ast.NamedExpr: "an assignment ':='",
        }
        kind = next((label for cls, label in kinds.items() if isinstance(node, cls)), type(node).__name__)
        raise _fail(self.text, node, f"{kind} is not allowed")

    def _subscript(self, node: ast.Subscript):
        # The book writes x[0]**2 + x[1]**2: accept x[i] as the i-th variable.
        index = node.slice
        if (
            isinstance(node.value, ast.Name)
            and node.value.id == "x"
            and "x" not in self.index_of
            and isinstance(index, ast.Constant)
            and isinstance(index.value, int)
            and not isinstance(index.value, bool)
            and 0 <= index.value < len(self.variables)
        ):
            i = index.value
            return lambda values: values[i]
        raise _fail(
            self.text, node,
            f"indexing is only allowed as x[0] .. x[{len(self.variables) - 1}] (the variables "
            f"{', '.join(self.variables)})",
        )

    def _call(self, node: ast.Call, depth: int):
        if not isinstance(node.func, ast.Name):
            raise _fail(self.text, node.func, "only the listed functions may be called, by plain name")
        name = node.func.id
        if name not in FUNCTIONS:
            raise _fail(self.text, node.func, f"the function {name!r} is not allowed")
        function, arity = FUNCTIONS[name]
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _fail(self.text, node, f"{name}() takes plain positional arguments only")
        if len(node.args) != arity:
            raise _fail(self.text, node, f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(node.args)}")
        args = [self.build(a, depth + 1) for a in node.args]
        if arity == 1:
            (only,) = args
            return lambda values: function(only(values))
        return lambda values: function(*(a(values) for a in args))


def _check_variables(variables) -> tuple[str, ...]:
    if isinstance(variables, str):
        variables = (variables,)
    try:
        names = tuple(variables)
    except TypeError:
        raise ExpressionError(f"variables must be a sequence of names, got {variables!r}") from None
    if not names:
        raise ExpressionError("variables must name at least one variable, e.g. ('x0', 'x1')")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ExpressionError(f"variable names must be identifiers like x0, got {name!r}")
        if name in FUNCTIONS or name in CONSTANTS:
            raise ExpressionError(f"variable name {name!r} clashes with a function or constant")
    if len(set(names)) != len(names):
        raise ExpressionError(f"variable names must be different, got {names}")
    return names


def compile_expression(text: str, variables=("x0", "x1")) -> Expression:
    """Turn a formula typed by a user into a vectorised function, safely.

    Parameters
    ----------
    text : str
        E.g. ``"x0**2 + x1**2"``, ``"sin(x0) * exp(-x1**2)"`` or the book's
        ``"x[0]**2 + x[1]**2"``. At most ``MAX_LENGTH`` characters.
    variables : sequence of str, default ("x0", "x1")
        The variable names, in the order they are read from ``x``.

    Returns
    -------
    Expression
        ``f(x)``: ``x[i]`` is the i-th variable (arrays welcome: evaluated
        elementwise with NumPy); with one variable, ``x`` is the value itself.

    Raises
    ------
    ExpressionError
        If the text is not a whitelisted arithmetic expression; the message
        quotes the offending part and lists what is allowed.

    Examples
    --------
    >>> f = compile_expression("x0**2 + x1**2")
    >>> f(np.array([3.0, 4.0]))
    np.float64(25.0)
    """
    variables = _check_variables(variables)
    if not isinstance(text, str):
        raise ExpressionError(f"the expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are accepted")
    if not text.strip():
        raise ExpressionError("the expression is empty; write a formula such as 'x0**2 + x1**2'")
    try:
        with warnings.catch_warnings():
            # e.g. "1x0" warns "invalid decimal literal" before failing; the error says it all
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        caret = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"{_shorten(text)!r} is not a valid formula{caret}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"{text[:60]!r}... cannot be parsed: {type(exc).__name__}") from None
    evaluate = _Builder(text.strip(), variables).build(tree.body)
    return Expression(text.strip(), variables, evaluate)
