"""The one mail layer: SMTP when configured, else the console log and a file outbox.

Every email is a folder templates/email/<name>/ with subject.txt, body.txt and
body.html, so each message has text and HTML parts.
"""
from __future__ import annotations

import logging
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from flask import current_app, render_template

from app.core import required

log = logging.getLogger(__name__)


def build(to: str, name: str, **context) -> EmailMessage:
    subject = render_template(f"email/{name}/subject.txt", **context).strip()
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="copydeck.local")
    message.set_content(render_template(f"email/{name}/body.txt", **context))
    message.add_alternative(render_template(f"email/{name}/body.html", **context), subtype="html")
    return message


def send(to: str, name: str, **context) -> EmailMessage:
    """Render and deliver one email."""
    message = build(to, name, **context)
    config = current_app.config
    if config.get("SMTP_HOST"):
        with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=15) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
            smtp.send_message(message)
        log.info("mail %r sent to %s via SMTP", name, to)
    else:
        outbox = Path(config["MAIL_OUTBOX"])
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{time.time():.6f}-{name}.eml"
        path.write_bytes(bytes(message))
        log.info("mail %r to %s (no SMTP configured; saved to %s):\n%s", name, to, path,
                 required(message.get_body(("plain",)), "the plain-text part").get_content())
    return message
