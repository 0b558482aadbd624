"""Hostile prompt templates: every denial-of-service class stops at a bound that its message names.

Each payload here would run for minutes or eat the machine's memory without the bounds;
with them, each test ends as soon as the bound stops the render.
"""
from __future__ import annotations

import os

import pytest

from app.catalog import rendering
from app.catalog.rendering import PromptError, RenderBusy, render_prompt

GROW = "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = EXPR %}{% endfor %}{{ ns.s|length }}"

DOS_PAYLOADS = {
    "nested loops over range": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "time", "s of CPU time (the limit)"),
    "nested loops over a string": (
        "{% set s = 'x' * 20000 %}{% for a in s %}{% for b in s %}{{ '' }}{% endfor %}{% endfor %}",
        "time", "s of CPU time (the limit)"),
    "exponent chain": ("{{ ((9 ** 64) ** 64) ** 64 }}", "size", "number too large (the limit is 4096 bits)"),
    "huge exponent": ("{{ 9 ** 999999 }}", "size", "exponent too large (the limit is 64)"),
    "integer squared in a loop": (
        "{% set ns = namespace(n=9) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
        "size", "number too large"),
    "replace growth": (GROW.replace("EXPR", "ns.s|replace('a', ns.s)"), "memory", "MB of memory (the limit)"),
    "center": ("{{ 'x'|center(2000000000) }}", "memory", "MB of memory (the limit)"),
    "format filter width": ("{{ '%2000000000s'|format('x') }}", "memory", "MB of memory (the limit)"),
    "str.format width": ("{{ '{:>2000000000}'.format('x') }}", "memory", "MB of memory (the limit)"),
    "join growth": (GROW.replace("EXPR", "[ns.s, ns.s]|join"), "memory", "MB of memory (the limit)"),
    "multiplication growth": (GROW.replace("EXPR", "ns.s * 2"), "size", "repetition too large"),
    "namespace string doubled": (GROW.replace("EXPR", "ns.s ~ ns.s"), "memory", "MB of memory (the limit)"),
    "namespace string doubled with +": (GROW.replace("EXPR", "ns.s + ns.s"), "memory", "MB of memory (the limit)"),
    "recursive macro": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                        "recursion", "more than 50 deep (the limit)"),
    "recursive loop": ("{% for x in [[1]] recursive %}{{ loop([x]) }}{% endfor %}", "recursion", "recursion limit"),
    "deeply nested expression": ("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "recursion", "recursion limit"),
    "output size": ("{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}",
                    "output", "longer than 20,000 characters"),
}


@pytest.fixture(autouse=True)
def quick_limits(monkeypatch):
    """A shorter CPU bound so the loop payloads end sooner, and a wall bound that a busy machine
    cannot reach first (the worker is niced); memory and output bounds are the defaults."""
    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_CPU_SECONDS", 0.3)
    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_WALL_SECONDS", 60)


@pytest.mark.parametrize("name", DOS_PAYLOADS)
def test_denial_of_service_payload_is_refused_naming_its_bound(name):
    source, bound, message = DOS_PAYLOADS[name]
    with pytest.raises(PromptError) as caught:
        render_prompt(source, {})
    assert caught.value.bound == bound, caught.value
    assert message in str(caught.value)
    # The worker survives its refusal and renders the next template.
    assert render_prompt("Hello {{ who }}", {"who": "there"}) == "Hello there"


def test_a_render_that_does_not_answer_is_killed_at_the_wall_time(monkeypatch):
    # CPU bound out of reach: only the parent's wall clock can stop this one.
    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_CPU_SECONDS", 60)
    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_WALL_SECONDS", 0.5)
    render_prompt("warm up", {})
    pool = rendering._pool(rendering.DEFAULT_LIMITS["RENDER_WORKERS"])
    before = {w.process.pid for w in list(pool._idle.queue)}
    with pytest.raises(PromptError, match=r"did not finish rendering within 0.5 s \(the limit\)") as caught:
        render_prompt(DOS_PAYLOADS["nested loops over range"][0], {})
    assert caught.value.bound == "time"
    # The worker that ran it is gone: nothing keeps burning a core after the request ended.
    after = {w.process.pid for w in list(pool._idle.queue)}
    for pid in before - after:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert render_prompt("Hello {{ who }}", {"who": "again"}) == "Hello again"


def test_a_render_waits_for_a_free_worker_and_then_is_refused_as_busy(monkeypatch):
    import threading
    import time

    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_WORKERS", 1)
    pool = rendering._pool(1)
    hostile = {"source": DOS_PAYLOADS["nested loops over range"][0], "context": {}, "max_chars": 20000,
               "cpu_seconds": 60, "memory_mb": 128, "available": None}
    answers = []
    busy = threading.Thread(target=lambda: answers.append(pool.render(hostile, 1.5)))
    busy.start()
    while not (pool._started == 1 and pool._idle.empty()):
        time.sleep(0.01)
    with pytest.raises(RenderBusy, match="too many templates are rendering right now") as caught:
        pool.render({**hostile, "source": "quick"}, 0.2)
    assert caught.value.bound == "busy"
    busy.join()
    assert answers[0]["bound"] == "time"


@pytest.mark.parametrize("source", ["{{ lipsum }}", "{{ range }}", "{{ ''.upper }}", "{{ namespace }}",
                                    "{% macro m() %}{% endmacro %}{{ m }}"])
def test_printing_a_function_is_refused_not_shown_with_its_address(source):
    with pytest.raises(PromptError, match="cannot be printed") as caught:
        render_prompt(source, {})
    assert "0x" not in str(caught.value)


@pytest.mark.parametrize("source", ["{{ [''.upper] }}", "{{ [lipsum] }}", "{{ cycler('a', 'b') }}",
                                    "{{ {'k': joiner()} }}"])
def test_an_object_inside_a_value_shows_as_a_placeholder(source):
    text = render_prompt(source, {})
    assert "0x" not in text and "[object]" in text, text


def test_constant_expressions_are_not_evaluated_in_the_web_process():
    # Jinja's compiler folds constants by running them: checking variables compiles,
    # so it happens in the render worker, under the memory bound.
    from app.catalog.schema import check_prompt

    with pytest.raises(PromptError, match="MB of memory"):
        check_prompt("{{ 'x'|center(2000000000) }} {{ product }}", [{"name": "product", "type": "text"}])
    with pytest.raises(PromptError, match="unknown variable 'produtc'"):
        check_prompt("{% if 0 %}{{ produtc }}{% endif %}{{ '%2000000000s'|format('x') }}",
                     [{"name": "product", "type": "text"}])


def test_a_worker_killed_while_idle_is_replaced():
    import signal

    render_prompt("warm up", {})
    pool = rendering._pool(rendering.DEFAULT_LIMITS["RENDER_WORKERS"])
    for worker in list(pool._idle.queue):
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    assert render_prompt("Hello {{ who }}", {"who": "there"}) == "Hello there"


@pytest.fixture
def own_pool(monkeypatch):
    """This test's own render workers (the suite's stay as they are), all ended when it ends."""
    monkeypatch.setattr(rendering, "_pools", {})
    yield
    rendering._close_pools()


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_a_renderer_that_cannot_start_is_a_try_again_and_the_next_render_starts_one(own_pool, monkeypatch,
                                                                                    tmp_path):
    script = rendering.prompt_sandbox.__file__
    monkeypatch.setattr(rendering.prompt_sandbox, "__file__", str(tmp_path / "gone.py"))  # e.g. a broken deploy
    with pytest.raises(PromptError, match="the template renderer did not start within 30 s; try again") as caught:
        render_prompt("Hello {{ who }}", {"who": "there"})
    assert caught.value.bound == "busy"
    monkeypatch.setattr(rendering.prompt_sandbox, "__file__", script)  # repaired
    assert render_prompt("Hello {{ who }}", {"who": "there"}) == "Hello there"  # the failed start freed its place


def test_a_worker_killed_in_the_middle_of_a_render_fails_that_render_only(own_pool, monkeypatch):
    import signal
    import threading

    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_CPU_SECONDS", 60)  # only the kill ends this render
    monkeypatch.setitem(rendering.DEFAULT_LIMITS, "RENDER_WALL_SECONDS", 60)
    render_prompt("warm up", {})
    [worker] = rendering._pool(rendering.DEFAULT_LIMITS["RENDER_WORKERS"])._idle.queue
    idle_ticks = _cpu_ticks(worker.process.pid)
    failures = []

    def render() -> None:
        with pytest.raises(PromptError) as caught:
            render_prompt(DOS_PAYLOADS["nested loops over range"][0], {})
        failures.append(caught.value)

    thread = threading.Thread(target=render)
    thread.start()
    pause = threading.Event()  # never set: the worker gives no sign of rendering but the CPU it burns
    for _ in range(3000):
        if _cpu_ticks(worker.process.pid) >= idle_ticks + 5:  # it is rendering
            break
        pause.wait(0.01)
    os.kill(worker.process.pid, signal.SIGKILL)  # the OOM killer, an operator...
    thread.join(30)
    assert [f.bound for f in failures] == ["time"] and "so it was stopped" in str(failures[0])
    assert worker.process.returncode == -signal.SIGKILL
    assert render_prompt("Hello {{ who }}", {"who": "again"}) == "Hello again"


def test_at_exit_the_render_workers_end_even_one_that_does_not_exit_on_its_own(own_pool):
    import signal

    render_prompt("warm up", {})
    [worker] = rendering._pool(rendering.DEFAULT_LIMITS["RENDER_WORKERS"])._idle.queue
    os.kill(worker.process.pid, signal.SIGSTOP)  # stopped: it cannot read the end of its input and exit
    rendering._close_pools()
    assert worker.process.returncode == -signal.SIGKILL
