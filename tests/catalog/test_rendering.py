"""Prompt templates are untrusted: the sandbox refuses what could reach Python internals."""
import pytest

from app.catalog.rendering import PromptError, check_syntax, render_prompt

SSTI_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ product.__class__.__mro__ }}",
    "{{ product|attr('__class__') }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ url_for.__globals__ }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{{ 'x' * 100000000 }}",
    "{{ 9 ** 999999 }}",
    "{% for i in range(100000000) %}x{% endfor %}",
    "{{ product.format.__globals__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__()[59].__init__.__globals__ }}",
]


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_template_injection_payloads_are_refused(payload):
    with pytest.raises(PromptError):
        render_prompt(payload, {"product": "Copydeck"})


def test_renders_fields_and_settings():
    text = render_prompt(
        "Write about {{ product }} in {{ language }}, tone {{ tone }}.{% if audience %} For {{ audience }}.{% endif %}",
        {"product": "Copydeck", "language": "French", "tone": "Bold", "audience": ""},
    )
    assert text == "Write about Copydeck in French, tone Bold."


def test_unknown_variable_is_an_error_not_an_empty_string():
    with pytest.raises(PromptError, match="produtc"):
        render_prompt("Write about {{ produtc }}", {"product": "x"})


def test_syntax_error_reports_its_line():
    with pytest.raises(PromptError) as caught:
        check_syntax("line one\nline two {{ oops \nline three")
    assert caught.value.lineno in (2, 3)
    assert "line" in str(caught.value)


def test_user_input_is_data_not_template_code():
    # A marketer typing Jinja into a field gets it back verbatim, not evaluated.
    text = render_prompt("Product: {{ product }}", {"product": "{{ 7 * 7 }} {% raw %}"})
    assert text == "Product: {{ 7 * 7 }} {% raw %}"
