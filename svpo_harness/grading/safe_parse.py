"""A safe LaTeX / plain-math expression parser that builds sympy objects directly.

Model text never reaches ``eval``, ``exec``, ``sympify(str)``, ``parse_expr`` or a LaTeX
grammar that ends in one of those. This module tokenizes the string itself and a small
recursive-descent parser calls sympy constructors (``Integer``, ``Symbol``, ``Add``...) on
values it built; every power, factorial and binomial passes ``limits`` first, so a huge
exact number is refused before sympy computes it.

Grammar (LaTeX and plain text mixed)::

    expr    := sign? term (('+' | '-') term)*
    term    := factor (('*' | '/' | \\cdot | \\times | \\div | <implicit>) factor)*
    factor  := ('-' | '+') factor | power
    power   := postfix ('^' exponent)?          right associative
    postfix := atom '!'*
    atom    := number | letter[_sub] | (expr) | [expr] | {expr} | |expr| | \\frac | \\sqrt
             | \\binom | \\pi | \\infty | greek | function call | \\lfloor..\\rfloor | \\lceil..

Conventions (method.md section 7): a bare ``i`` is the imaginary unit, ``e`` is Euler's
number, decimals become exact Rationals but mark the result ``inexact`` (so the numeric
tolerance policy applies), ``xy`` is ``x*y``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sympy

from .limits import LimitExceeded, check_binomial, check_factorial, check_pow

# Deepest recursion of parse_expr; brackets are pre-checked too (limits.MAX_NESTING).
MAX_PARSE_DEPTH = 60
# Roots of integers above this are left unevaluated: sympy's perfect-power and factoring
# attempts take seconds to minutes on thousand-digit bases, while evalf stays fast.
_BIG_ROOT_BASE = 10**100
# Most tokens in one expression.
MAX_TOKENS = 600


class ParseError(ValueError):
    """The text is not an expression this parser understands."""


@dataclass(frozen=True)
class Parsed:
    """A parsed expression; ``inexact`` is True when a decimal literal occurred in it."""

    expr: Any
    inexact: bool


_TOKEN_RE = re.compile(
    r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+(?![a-zA-Z]))?)"
    r"|(?P<cmd>\\[a-zA-Z]+|\\[{}|%])"
    r"|(?P<word>[a-zA-Z]+)"
    r"|(?P<op>\*\*|[-+*/^_()\[\]{}|!,'])"
    r"|(?P<ws>\s+)"
)
_UNICODE = {"π": "\\pi ", "√": "\\sqrt ", "×": "*", "÷": "/", "·": "*", "∞": "\\infty ", "−": "-"}
# Multi-letter words in plain text that mean something; any other run is a product of letters.
_WORDS = frozenset(
    "sqrt sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh ln log exp pi infty inf "
    "oo abs".split()
)
_FUNCS: dict[str, Any] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "cot": sympy.cot, "sec": sympy.sec,
    "csc": sympy.csc, "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "exp": sympy.exp,
    "ln": sympy.log, "abs": sympy.Abs,
}  # fmt: skip
_GREEK = frozenset(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu "
    "xi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma "
    "Upsilon Phi Psi Omega".split()
)
_MUL_CMDS = frozenset({"\\cdot", "\\times", "\\ast"})


def tokenize(s: str) -> list[tuple[str, str]]:
    """Split ``s`` into (kind, text) tokens; raises ParseError on anything unknown."""
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if not m:
            raise ParseError(f"unexpected character {s[pos]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group(0)
        if kind == "ws":
            continue
        if kind == "word":
            if text in _WORDS:
                out.append(("word", text))
            else:
                out.extend(("letter", ch) for ch in text)  # `xy` is x*y
        elif kind == "op" and text == "**":
            out.append(("op", "^"))
        else:
            out.append((kind, text))
        if len(out) > MAX_TOKENS:
            raise LimitExceeded("too many tokens")
    return out


def _number(text: str) -> tuple[Any, bool]:
    """Exact sympy Rational for a numeric literal, and whether it had a decimal/exponent."""
    mant, _, exp_part = text.lower().partition("e")
    whole, dot, frac = mant.partition(".")
    value = sympy.Rational(int((whole or "0") + frac), 10 ** len(frac))
    inexact = bool(dot) or bool(exp_part)
    if exp_part:
        e = int(exp_part)
        if abs(e) > 400:  # 1e400 is no answer; keeps 10**e small
            raise LimitExceeded("scientific exponent too large")
        value = value * sympy.Integer(10) ** e
    return value, inexact


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0
        self.depth = 0
        self.abs_depth = 0
        self.inexact = False

    # -- token helpers -------------------------------------------------------------------
    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def is_(self, text: str) -> bool:
        t = self.peek()
        return t is not None and t[1] == text

    def take(self) -> tuple[str, str]:
        t = self.peek()
        if t is None:
            raise ParseError("unexpected end")
        self.i += 1
        return t

    def expect(self, text: str) -> None:
        t = self.take()
        if t[1] != text:
            raise ParseError(f"expected {text!r}, got {t[1]!r}")

    # -- grammar -------------------------------------------------------------------------
    def parse_expr(self) -> Any:
        self.depth += 1
        if self.depth > MAX_PARSE_DEPTH:
            raise LimitExceeded("expression nested too deeply")
        terms = [self.parse_term()]
        while self.peek() is not None and self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            t = self.parse_term()
            terms.append(t if op == "+" else -t)
        self.depth -= 1
        return sympy.Add(*terms) if len(terms) > 1 else terms[0]

    def starts_atom(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        kind, text = t
        if kind in ("num", "letter", "word"):
            return True
        if kind == "cmd":
            return text not in _MUL_CMDS and text not in ("\\div", "\\rfloor", "\\rceil", "\\}")
        if text == "|":
            return self.abs_depth == 0
        return text in ("(", "[", "{")

    def parse_term(self) -> Any:
        factors = [self.parse_factor()]
        while True:
            t = self.peek()
            if t is None:
                break
            if t[1] in ("*", "/") or t[1] in _MUL_CMDS or t[1] == "\\div":
                self.take()
                f = self.parse_factor()
                factors.append(f if t[1] not in ("/", "\\div") else self._div(1, f))
            elif self.starts_atom():
                factors.append(self.parse_power())  # implicit product: 2x, 3\sqrt{2}
            else:
                break
        return sympy.Mul(*factors) if len(factors) > 1 else factors[0]

    def _div(self, a: Any, b: Any) -> Any:
        check_pow(b, sympy.Integer(-1))
        return sympy.Mul(a, sympy.Pow(b, -1))

    def parse_factor(self) -> Any:
        if self.is_("-"):
            self.take()
            return -self.parse_factor()
        if self.is_("+"):
            self.take()
            return self.parse_factor()
        return self.parse_power()

    def parse_power(self) -> Any:
        base = self.parse_postfix()
        if self.is_("^"):
            self.take()
            exp = self.parse_exponent()
            return self._pow(base, exp)
        return base

    def parse_exponent(self) -> Any:
        if self.is_("-"):
            self.take()
            return -self.parse_exponent()
        if self.is_("+"):
            self.take()
            return self.parse_exponent()
        return self.parse_power()

    def _pow(self, base: Any, exp: Any) -> Any:
        check_pow(base, exp)
        if (
            exp.is_Rational and not exp.is_Integer and base.is_Rational
            and max(abs(int(base.p)), int(base.q)) > _BIG_ROOT_BASE
        ):  # fmt: skip
            # sympy would try to factor the base to simplify the root: minutes for 10^9000+1.
            return sympy.Pow(base, exp, evaluate=False)
        return sympy.Pow(base, exp)

    def parse_postfix(self) -> Any:
        a = self.parse_atom()
        while self.is_("!"):
            self.take()
            check_factorial(a)
            a = sympy.factorial(a)
        return a

    def group(self, close: str) -> Any:
        e = self.parse_expr()
        self.expect(close)
        return e

    def arg(self) -> Any:
        """One macro argument: ``{...}``, a single digit (``\\frac12``) or one atom."""
        t = self.peek()
        if t is None:
            raise ParseError("missing argument")
        if t[1] == "{":
            self.take()
            return self.group("}")
        if t[0] == "num" and len(t[1]) > 1:
            # `\frac12`: TeX takes one character; the rest stays for the next argument.
            self.toks[self.i] = ("num", t[1][1:])
            v, inexact = _number(t[1][0])
            return v
        return self.parse_atom()

    def parse_atom(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            v, inexact = _number(text)
            self.inexact |= inexact
            return v
        if kind == "letter":
            return self.letter(text)
        if kind in ("word", "cmd"):
            return self.command(text.lstrip("\\"))
        if text == "(":
            return self.group(")")
        if text == "[":
            return self.group("]")
        if text == "{":
            return self.group("}")
        if text == "|":
            self.abs_depth += 1
            inner = self.group("|")
            self.abs_depth -= 1
            return sympy.Abs(inner)
        raise ParseError(f"unexpected {text!r}")

    def letter(self, ch: str) -> Any:
        if self.is_("_"):
            self.take()
            sub = self.take()
            if sub[1] == "{":
                parts = []
                while not self.is_("}"):
                    parts.append(self.take()[1])
                self.take()
                name = "".join(parts)
            else:
                name = sub[1]
            if not re.fullmatch(r"[A-Za-z0-9]{1,12}", name):
                raise ParseError("unsupported subscript")
            return sympy.Symbol(f"{ch}_{name}")
        if ch == "i":
            return sympy.I
        if ch == "e":
            return sympy.E
        return sympy.Symbol(ch)

    def command(self, name: str) -> Any:
        if name == "frac":
            num = self.arg()
            den = self.arg()
            return self._div(num, den)
        if name == "sqrt":
            if self.is_("["):
                self.take()
                n = self.group("]")
                x = self.arg()
                return self._pow(x, self._div(1, n))
            return self._pow(self.arg(), sympy.Rational(1, 2))
        if name == "binom":
            n = self.arg()
            k = self.arg()
            check_binomial(n)
            return sympy.binomial(n, k)
        if name == "pi":
            return sympy.pi
        if name in ("infty", "inf", "oo"):
            return sympy.oo
        if name in _GREEK:
            return sympy.Symbol(name)
        if name in ("lfloor", "lceil"):
            inner = self.group("\\rfloor" if name == "lfloor" else "\\rceil")
            return sympy.floor(inner) if name == "lfloor" else sympy.ceiling(inner)
        if name in ("log", "lg"):
            base = None
            if self.is_("_"):
                self.take()
                base = self.arg()
            x = self.func_arg()
            return sympy.log(x, base) if base is not None else sympy.log(x)
        if name in _FUNCS:
            power = None
            if self.is_("^"):  # `\sin^2 x` is (sin x)^2
                self.take()
                power = self.parse_exponent()
            val = _FUNCS[name](self.func_arg())
            return self._pow(val, power) if power is not None else val
        raise ParseError(f"unsupported command {name!r}")

    def func_arg(self) -> Any:
        """A function's argument: ``(...)``/``{...}``, else a run of implicit factors."""
        if self.is_("("):
            self.take()
            return self.group(")")
        if self.is_("{"):
            self.take()
            return self.group("}")
        factors = [self.parse_power()]
        while self.peek() is not None and self.peek()[0] in ("num", "letter"):
            factors.append(self.parse_power())
        return sympy.Mul(*factors) if len(factors) > 1 else factors[0]


def parse_expression(s: str) -> Parsed:
    """Parse one scalar expression into a sympy object.

    Raises ``ParseError`` for text that is not an expression and ``LimitExceeded`` for one
    whose value would be too big to build.
    """
    tokens = tokenize(s)
    if not tokens:
        raise ParseError("empty expression")
    p = _Parser(tokens)
    try:
        expr = p.parse_expr()
    except RecursionError as exc:  # belt and braces; depth is bounded above
        raise LimitExceeded("recursion limit") from exc
    if p.i != len(tokens):
        raise ParseError(f"unexpected {tokens[p.i][1]!r}")
    return Parsed(expr, p.inexact)
