"""Rendering prompt templates: untrusted Jinja in a sandbox.

Templates are content edited by admins (and later by workspaces), so they are
rendered with SandboxedEnvironment (no access to Python internals) and
StrictUndefined (a misspelt variable is an error, not an empty string).
"""
from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_RENDERED_CHARS = 20_000


class _PromptSandbox(SandboxedEnvironment):
    """The sandbox, plus limits on `*` and `**` so a template cannot build huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    if len(seq) * count > MAX_RENDERED_CHARS:
                        raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


_env = _PromptSandbox(undefined=StrictUndefined, autoescape=False)


class PromptError(Exception):
    """A prompt template that cannot be rendered, with the line when known."""

    def __init__(self, message: str, lineno: int | None = None):
        super().__init__(message if lineno is None else f"line {lineno}: {message}")
        self.message = message
        self.lineno = lineno


def check_syntax(source: str) -> None:
    """Raise PromptError if the template does not parse."""
    try:
        _env.parse(source)
    except TemplateSyntaxError as exc:
        raise PromptError(exc.message or "syntax error", exc.lineno) from exc


def check_variables(source: str, available: set[str] | frozenset[str]) -> None:
    """Raise PromptError for a variable the template uses but nobody provides.

    Rendering with StrictUndefined only catches the branches that run with the
    sample inputs; this finds an unknown name anywhere, with its line.
    """
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise PromptError(exc.message or "syntax error", exc.lineno) from exc
    unknown = meta.find_undeclared_variables(tree) - set(available) - set(_env.globals)
    if not unknown:
        return
    first = min(
        (node.lineno, node.name) for node in tree.find_all(nodes.Name)
        if node.name in unknown and node.ctx == "load"
    )
    raise PromptError(f"unknown variable '{first[1]}'", first[0])


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja rewrites tracebacks to it)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_prompt(source: str, context: dict[str, Any]) -> str:
    """Render one prompt template with the given variables, safely."""
    try:
        template = _env.from_string(source)
        text = template.render(**context)
    except TemplateSyntaxError as exc:
        raise PromptError(exc.message or "syntax error", exc.lineno) from exc
    except SecurityError as exc:
        raise PromptError(f"not allowed in a template: {exc}", _template_line(exc)) from exc
    except TemplateError as exc:
        message = str(exc.message if hasattr(exc, "message") else exc)
        raise PromptError(message, _template_line(exc)) from exc
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise PromptError(f"cannot render: {exc}", _template_line(exc)) from exc
    if len(text) > MAX_RENDERED_CHARS:
        raise PromptError(f"the rendered prompt is longer than {MAX_RENDERED_CHARS} characters")
    return text.strip()
