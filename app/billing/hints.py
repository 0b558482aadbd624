"""Where more seats or another plan come from, said to the person reading it.

The same question ("how do we get more?") has four answers: with billing on, an owner goes to
Billing and anyone else asks the owner; with billing off (no Stripe key) plans are set by the site's
administrators in the admin console, so an owner asks them, and a site admin is pointed at the page.
Pages and messages call `more_seats_hint` instead of each writing its own sentence, so a Free owner
never dead-ends on a CLI command or a checkout that does not exist.
"""
from __future__ import annotations

from app.billing.gateway import enabled as billing_enabled


def more_seats_hint(*, is_owner: bool, is_site_admin: bool) -> str:
    """One sentence: how this reader gets more seats, generations or a paid plan."""
    if billing_enabled():
        if is_owner:
            return "You can add seats or change the plan in Billing."
        return "Ask the workspace owner to add seats or upgrade the plan."
    if is_site_admin:
        return ("Billing is off on this Copydeck: as a site admin you set this workspace's plan and seats "
                "in the admin console (Admin › Workspaces).")
    if is_owner:
        return ("Plans and seats on this Copydeck are set by its administrator: "
                "ask your administrator for more seats or another plan.")
    return "Ask the workspace owner; plans and seats on this Copydeck are set by its administrator."
