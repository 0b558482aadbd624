"""Model text shown as copy: Markdown rendered by markdown-it-py, then sanitised by nh3.

The model's text is untrusted. markdown-it runs with raw HTML off (any `<tag>` the model wrote is
escaped as text) and links restricted to http(s)/mailto; nh3 (the Ammonia sanitiser) then keeps only
the tags below, so even a renderer bug cannot put script or attributes on the page.
"""
from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.validateLink = lambda url: url.lower().startswith(("http://", "https://", "mailto:"))  # type: ignore[method-assign]  # markdown-it-py's documented hook

ALLOWED_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                "blockquote", "code", "pre", "hr", "a"}
_MARKDOWN_HINT = re.compile(r"(^|\n)\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|>\s)|\*\*|__|\[[^\]]+\]\(", re.MULTILINE)


def has_markdown(text: str) -> bool:
    """Whether the text uses Markdown syntax worth rendering (plain copy stays pre-formatted text)."""
    return bool(_MARKDOWN_HINT.search(text or ""))


def render_markdown(text: str) -> Markup:
    """Sanitised HTML for a block of model copy."""
    html = _md.render(text or "")
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href"}}, url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)
