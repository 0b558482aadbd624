"""A fake Stripe API on 127.0.0.1, called by the real `stripe` library.

Point the app at it with STRIPE_API_BASE=fake.base_url. It keeps customers,
Checkout sessions, portal sessions, subscriptions (with the period on the
subscription item, as current API versions do), invoice previews and events,
records every request with its idempotency key, and replays the first
response for a repeated idempotency key, as Stripe does.

Test helpers:
  fake.complete_checkout(session_id)        pay: create the subscription
  fake.update_subscription(sub_id, **fields) change status, quantity, cancel_at_period_end...
  fake.event(type, obj) -> event            record an event (also listed by GET /v1/events)
  fake.signed(event, secret, timestamp=None) -> (payload bytes, Stripe-Signature header)
  fake.failures = [500, 500, 500]           the next API requests fail with these statuses
The hosted pages (GET /checkout/<id>, GET /portal/<id>) are tiny HTML pages;
POST /checkout/<id>/pay completes the session and redirects to success_url.
"""
from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import stripe

PRICES = {"price_pro_test": 2900, "price_business_test": 7900}
PERIOD = 30 * 24 * 3600


def _decode_form(body: str) -> dict:
    """Stripe's nested form encoding (a[b][0][c]=v) back into dicts and lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({} if not nxt or not nxt.isdigit() else [])
                if last:
                    node[index] = value
                else:
                    if not isinstance(node[index], (dict, list)):
                        node[index] = [] if nxt.isdigit() else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt.isdigit() else {})
    return root


class FakeStripe:
    def __init__(self):
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.customers: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.events: list[dict] = []
        self.requests: list[dict] = []
        self.idempotent: dict[str, tuple[int, dict]] = {}
        self.failures: list[int] = []  # HTTP statuses for the next API requests, in order
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> "FakeStripe":
        fake = self

        class Handler(_Handler):
            owner = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def reset(self) -> None:
        with self.lock:
            self.customers.clear()
            self.sessions.clear()
            self.subscriptions.clear()
            self.events.clear()
            self.requests.clear()
            self.idempotent.clear()
            self.failures.clear()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):06d}"

    # --- state changes ---------------------------------------------------------------
    def complete_checkout(self, session_id: str, quantity: int | None = None) -> dict:
        with self.lock:
            session = self.sessions[session_id]
            item_in = session["line_items"][0]
            now = int(time.time())
            sub_id, item_id = self.new_id("sub"), self.new_id("si")
            price = item_in["price"]
            subscription = {
                "id": sub_id, "object": "subscription", "customer": session["customer"], "status": "active",
                "created": now, "cancel_at_period_end": False, "canceled_at": None,
                "metadata": session.get("subscription_data", {}).get("metadata", {}),
                "items": {"object": "list", "has_more": False, "url": f"/v1/subscription_items?subscription={sub_id}",
                          "data": [{
                              "id": item_id, "object": "subscription_item", "subscription": sub_id,
                              "quantity": int(quantity or item_in["quantity"]),
                              "price": {"id": price, "object": "price", "unit_amount": PRICES.get(price, 1000),
                                        "currency": "usd", "recurring": {"interval": "month"}},
                              "current_period_start": now, "current_period_end": now + PERIOD,
                          }]},
            }
            self.subscriptions[sub_id] = subscription
            session.update(status="complete", payment_status="paid", subscription=sub_id)
            return subscription

    def update_subscription(self, sub_id: str, quantity: int | None = None, renew: bool = False, **fields) -> dict:
        with self.lock:
            subscription = self.subscriptions[sub_id]
            subscription.update(fields)
            item = subscription["items"]["data"][0]
            if quantity is not None:
                item["quantity"] = int(quantity)
            if renew:
                item["current_period_start"] = item["current_period_end"]
                item["current_period_end"] = item["current_period_start"] + PERIOD
            return subscription

    def event(self, type_: str, obj: dict, created: int | None = None) -> dict:
        with self.lock:
            event = {"id": self.new_id("evt"), "object": "event", "type": type_,
                     "created": created or int(time.time()), "api_version": "2026-10-28.endive",
                     "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                     "data": {"object": json.loads(json.dumps(obj))}}
            self.events.append(event)
            return event

    @staticmethod
    def signed(event: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
        return payload.encode(), header

    # --- API -------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, form: dict) -> tuple[int, dict]:
        m = re.fullmatch
        if method == "POST" and path == "/v1/customers":
            cid = self.new_id("cus")
            self.customers[cid] = {"id": cid, "object": "customer", "email": form.get("email"),
                                   "name": form.get("name"), "metadata": form.get("metadata", {})}
            return 200, self.customers[cid]
        if method == "GET" and (g := m(r"/v1/customers/([\w]+)", path)):
            return self._get(self.customers, g.group(1))
        if method == "POST" and path == "/v1/checkout/sessions":
            if form.get("customer") not in self.customers:
                return _error(400, f"No such customer: '{form.get('customer')}'")
            sid = self.new_id("cs_test")
            items = [{"price": li["price"], "quantity": int(li["quantity"]),
                      "adjustable_quantity": li.get("adjustable_quantity")} for li in form["line_items"]]
            self.sessions[sid] = {"id": sid, "object": "checkout.session", "mode": form.get("mode"),
                                  "customer": form["customer"], "client_reference_id": form.get("client_reference_id"),
                                  "status": "open", "payment_status": "unpaid", "subscription": None,
                                  "success_url": form["success_url"], "cancel_url": form["cancel_url"],
                                  "metadata": form.get("metadata", {}), "line_items": items,
                                  "subscription_data": form.get("subscription_data", {}),
                                  "url": f"{self.base_url}/checkout/{sid}"}
            return 200, self._public_session(self.sessions[sid])
        if method == "GET" and (g := m(r"/v1/checkout/sessions/([\w]+)", path)):
            status, session = self._get(self.sessions, g.group(1))
            return status, self._public_session(session) if status == 200 else session
        if method == "POST" and path == "/v1/billing_portal/sessions":
            if form.get("customer") not in self.customers:
                return _error(400, f"No such customer: '{form.get('customer')}'")
            pid = self.new_id("bps")
            return 200, {"id": pid, "object": "billing_portal.session", "customer": form["customer"],
                         "return_url": form.get("return_url"), "url": f"{self.base_url}/portal/{pid}"}
        if method == "GET" and path == "/v1/subscriptions":
            data = [s for s in self.subscriptions.values() if s["customer"] == query.get("customer")]
            if query.get("status", "active") != "all":
                data = [s for s in data if s["status"] == query.get("status", "active")]
            data.sort(key=lambda s: -s["created"])
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/subscriptions"}
        if method == "GET" and (g := m(r"/v1/subscriptions/([\w]+)", path)):
            return self._get(self.subscriptions, g.group(1))
        if method == "POST" and (g := m(r"/v1/subscriptions/([\w]+)", path)):
            if g.group(1) not in self.subscriptions:
                return _error(404, f"No such subscription: '{g.group(1)}'")
            quantity = None
            for item in form.get("items", []):
                quantity = int(item["quantity"])
            fields = {}
            if "cancel_at_period_end" in form:
                fields["cancel_at_period_end"] = form["cancel_at_period_end"] == "true"
            return 200, self.update_subscription(g.group(1), quantity=quantity, **fields)
        if method == "POST" and path == "/v1/invoices/create_preview":
            sub = self.subscriptions.get(form.get("subscription"))
            if sub is None:
                return _error(400, "No such subscription")
            item = sub["items"]["data"][0]
            new_quantity = int(form["subscription_details"]["items"][0]["quantity"])
            unit = item["price"]["unit_amount"]
            remaining = max(item["current_period_end"] - int(time.time()), 0) / PERIOD
            proration = round((new_quantity - item["quantity"]) * unit * remaining)
            return 200, {"id": None, "object": "invoice", "customer": sub["customer"], "amount_due": proration,
                         "total": new_quantity * unit + proration, "currency": "usd",
                         "lines": {"object": "list", "data": [], "has_more": False, "url": ""}}
        if method == "GET" and path == "/v1/events":
            after = int(query.get("created[gt]", 0))
            data = sorted((e for e in self.events if e["created"] > after), key=lambda e: -e["created"])
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/events"}
        return _error(404, f"Unrecognized request URL ({method}: {path})")

    def _get(self, table: dict, key: str) -> tuple[int, dict]:
        if key not in table:
            return _error(404, f"No such object: '{key}'")
        return 200, table[key]

    @staticmethod
    def _public_session(session: dict) -> dict:
        return {k: v for k, v in session.items() if k not in ("line_items", "subscription_data")}


def _error(status: int, message: str) -> tuple[int, dict]:
    return status, {"error": {"type": "invalid_request_error", "message": message}}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, method: str) -> None:
        fake = self.owner
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if url.path.startswith("/checkout/") or url.path.startswith("/portal/"):
            return self._hosted(method, url.path)
        form = _decode_form(raw)
        query = dict(parse_qsl(url.query))
        key = self.headers.get("Idempotency-Key")
        with fake.lock:
            fake.requests.append({"method": method, "path": url.path, "form": form, "query": query,
                                  "idempotency_key": key, "authorization": self.headers.get("Authorization")})
            if fake.failures:
                status, body = fake.failures.pop(0), {"error": {"type": "api_error", "message": "fake outage"}}
            elif method == "POST" and key and key in fake.idempotent:
                status, body = fake.idempotent[key]
            else:
                status, body = fake.handle(method, url.path, query, form)
                if method == "POST" and key:
                    fake.idempotent[key] = (status, body)
        self._send(status, json.dumps(body).encode(), headers={"Request-Id": fake.new_id("req")})

    def _hosted(self, method: str, path: str) -> None:
        fake = self.owner
        if (g := re.fullmatch(r"/checkout/([\w]+)", path)) and method == "GET":
            session = fake.sessions.get(g.group(1))
            if session is None:
                return self._send(404, b"no such session", "text/plain")
            item = session["line_items"][0]
            page = (f"<!doctype html><title>Fake Checkout</title><h1>Fake Stripe Checkout</h1>"
                    f"<p data-testid=checkout-summary>{item['price']} x {item['quantity']}</p>"
                    f"<form method=post action='/checkout/{session['id']}/pay'><button>Pay</button></form>")
            return self._send(200, page.encode(), "text/html")
        if (g := re.fullmatch(r"/checkout/([\w]+)/pay", path)) and method == "POST":
            session = fake.sessions.get(g.group(1))
            if session is None:
                return self._send(404, b"no such session", "text/plain")
            fake.complete_checkout(session["id"])
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
            return self._send(303, b"", "text/plain", {"Location": target})
        if re.fullmatch(r"/portal/([\w]+)", path):
            return self._send(200, b"<!doctype html><title>Fake portal</title><h1>Fake billing portal</h1>", "text/html")
        return self._send(404, b"not found", "text/plain")

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")
