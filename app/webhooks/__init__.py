"""Outbound webhooks: endpoints a workspace registers, the events we emit to them, and their deliveries.

`services.emit()` records an event and one delivery per subscribed endpoint in the caller's transaction;
`tasks.deliver()` (an RQ job, enqueued through the outbox after commit) sends one signed attempt;
`services.sweep_due()` (the maintenance round) enqueues the retries that are due. See ARCHITECTURE.md.
"""
