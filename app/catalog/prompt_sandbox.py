"""The Jinja sandbox that renders untrusted prompt templates, and the render worker that runs it.

This module imports only the standard library and Jinja: it is both imported by
the app (parsing, the environment) and run as a script, `python prompt_sandbox.py`,
as a render worker process (see rendering.RenderPool). A worker reads requests
from stdin and answers on stdout, one at a time, each a 4-byte length and JSON.

Bounds inside a worker, per render:
- CPU time: an ITIMER_PROF timer interrupts the render (nested loops, slow filters);
- memory: RLIMIT_AS caps the whole process, so a string or list that grows through
  filters, concatenation or a namespace doubled in a loop raises MemoryError;
- output size: counted while the template streams, stopped at the limit;
- nesting: macro calls deeper than MAX_CALL_DEPTH, or any RecursionError;
- numbers: `*` and `**` refuse integers that would be larger than MAX_INT_BITS.
A render that still does not answer (one long C-level operation) is killed by the parent.
"""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import struct
import sys
from typing import Any, BinaryIO

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.runtime import Macro
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_RENDERED_CHARS = 20_000
MAX_REPEAT_CHARS = 20_000
MAX_EXPONENT = 64
MAX_INT_BITS = 4_096
MAX_CALL_DEPTH = 50
_ADDRESS = re.compile(r"<[^<>\n]{1,200}? at 0x[0-9a-fA-F]+>")
OBJECT_PLACEHOLDER = "[object]"


class _CpuTimeUp(BaseException):
    """Raised by the SIGPROF handler; a BaseException so no `except Exception` in Jinja swallows it."""


class LimitExceeded(SecurityError):
    """A value or nesting past one of the limits above; `bound` names which."""

    def __init__(self, message: str, bound: str):
        super().__init__(message)
        self.bound = bound


class _PromptSandbox(SandboxedEnvironment):
    """The sandbox, plus limits on `*` and `**`, macro depth, and no Python objects printed."""

    intercepted_binops = frozenset({"*", "**"})
    call_depth = 0

    def call_binop(self, context, operator, left, right):
        both_ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and isinstance(right, (int, float)):
            if abs(right) > MAX_EXPONENT:
                raise LimitExceeded(f"exponent too large (the limit is {MAX_EXPONENT})", "size")
            if both_ints:
                _check_bits(left.bit_length() * abs(right))
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                if sized and len(seq) * count > MAX_REPEAT_CHARS:
                    raise LimitExceeded(f"repetition too large (the limit is {MAX_REPEAT_CHARS:,} characters)", "size")
            if both_ints:
                _check_bits(left.bit_length() + right.bit_length())
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        if not isinstance(__obj, Macro):
            return super().call(__context, __obj, *args, **kwargs)
        if __self.call_depth >= MAX_CALL_DEPTH:
            raise LimitExceeded(f"macros call each other more than {MAX_CALL_DEPTH} deep (the limit)", "recursion")
        __self.call_depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            __self.call_depth -= 1


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise LimitExceeded(f"number too large (the limit is {MAX_INT_BITS} bits)", "size")


def _finalize(value: Any) -> Any:
    """What `{{ ... }}` prints: text and numbers, never a function's or an object's repr."""
    if callable(value) and not isinstance(value, Undefined):  # printing Undefined raises its own error
        raise SecurityError("a function, macro or class cannot be printed: call it, or print a value")
    return value


env = _PromptSandbox(undefined=StrictUndefined, autoescape=False, finalize=_finalize)


def _raw_line(template, exc: BaseException) -> int | None:
    """The template line of an exception Jinja did not rewrite (it only rewrites Exception)."""
    line = template_line(exc)
    return template.get_corresponding_lineno(line) if template is not None and line is not None else None


def template_line(exc: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja rewrites tracebacks to it)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(source: str, context: dict[str, Any], *, max_chars: int = MAX_RENDERED_CHARS,
           cpu_seconds: float = 0, memory_mb: int = 0, available: list[str] | None = None) -> dict[str, Any]:
    """Render once: {"text": ...} or {"error": message, "line": n or None, "bound": name or None}.

    With `available`, first refuse a variable used anywhere in the template that is
    not among them. That check compiles the template, and Jinja's compiler folds
    constant expressions (`{{ 'x'|center(10**9) }}`) by running them: it belongs
    here, inside the bounds, like the render.
    """
    env.call_depth = 0
    template = None
    try:
        if available is not None:
            unknown = _unknown_variable(source, set(available))
            if unknown is not None:
                return _error(f"unknown variable '{unknown[1]}'", unknown[0], None)
        template = _compiled(source)
        chunks, size = [], 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > max_chars:
                return _error(f"the rendered prompt is longer than {max_chars:,} characters", None, "output")
            chunks.append(chunk)
        text = "".join(chunks)
    except _CpuTimeUp as exc:
        return _error(f"rendering took more than {cpu_seconds:g} s of CPU time (the limit), so it was stopped; "
                      "look for loops inside loops or large ranges", _raw_line(template, exc), "time")
    except MemoryError as exc:
        return _error(f"rendering needs more than {memory_mb} MB of memory (the limit); look for text or "
                      "lists that grow in a loop", template_line(exc), "memory")
    except RecursionError as exc:
        return _error("the template nests too deeply (Python's recursion limit); look for a macro that "
                      "calls itself", template_line(exc), "recursion")
    except TemplateSyntaxError as exc:
        return _error(exc.message or "syntax error", exc.lineno, None)
    except LimitExceeded as exc:
        return _error(str(exc), template_line(exc), exc.bound)
    except SecurityError as exc:
        return _error(f"not allowed in a template: {exc}", template_line(exc), None)
    except TemplateError as exc:
        return _error(str(exc.message if hasattr(exc, "message") else exc), template_line(exc), None)
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        return _error(f"cannot render: {exc}", template_line(exc), None)
    return {"text": _ADDRESS.sub(OBJECT_PLACEHOLDER, text)}


def _unknown_variable(source: str, available: set[str]) -> tuple[int, str] | None:
    """The first (line, name) the template reads but nobody provides, in any branch."""
    tree = env.parse(source)
    unknown = meta.find_undeclared_variables(tree) - available - set(env.globals)
    if not unknown:
        return None
    return min((node.lineno, node.name) for node in tree.find_all(nodes.Name)
               if node.name in unknown and node.ctx == "load")


_cache: dict[str, Any] = {}


def _compiled(source: str):
    """Compiling costs more than rendering a typical prompt: keep the last templates compiled."""
    template = _cache.get(source)
    if template is None:
        if len(_cache) >= 64:
            _cache.clear()
        template = _cache[source] = env.from_string(source)
    return template


def _error(message: str, line: int | None, bound: str | None) -> dict[str, Any]:
    return {"error": message, "line": line, "bound": bound}


# --- The worker process -------------------------------------------------------------------------

def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message, default=str).encode()
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (length,) = struct.unpack(">I", head)
    return json.loads(stream.read(length))


def _raise_time_up(_signum, _frame):
    raise _CpuTimeUp()


def _limit_memory(memory_mb: int, baseline: int) -> None:
    """At most `memory_mb` more than the worker uses between renders (RLIMIT_AS: MemoryError past it)."""
    limit = baseline + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer render requests until stdin closes (the parent exited or retired this worker)."""
    signal.signal(signal.SIGPROF, _raise_time_up)
    while True:
        request = read_message(requests)
        if request is None:
            return
        cpu, memory_mb = float(request["cpu_seconds"]), int(request["memory_mb"])
        _limit_memory(memory_mb, _address_space())
        signal.setitimer(signal.ITIMER_PROF, cpu)
        try:
            answer = render(request["source"], request["context"], max_chars=int(request["max_chars"]),
                            cpu_seconds=cpu, memory_mb=memory_mb, available=request.get("available"))
        except _CpuTimeUp:  # fired between the render and here
            answer = _error(f"rendering took more than {cpu:g} s of CPU time (the limit)", None, "time")
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        write_message(answers, answer)


def main() -> None:
    os.nice(10)  # hostile renders yield the CPU to page requests
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on `make run` reaches the group: exit with the parent
    sys.setrecursionlimit(600)
    env.from_string("{{ warm }}").render(warm=1)  # compile Jinja's lazy parts before the memory limit
    write_message(sys.stdout.buffer, {"ready": True})  # start-up does not count against a render's time
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
