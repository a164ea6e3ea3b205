"""The `shop_sim` source: a deterministic online shop with a daily rhythm, injected incidents
and their labels.

Every sample's value is a pure function of (settings, series, step slot), so re-polling,
back-filling, restarting and backtesting all see the same numbers; noise comes from a
counter-based hash (splitmix64), vectorised over slots.

Series: `orders_per_minute{region}`, `payment_success_ratio{provider}`,
`checkout_latency_p95_ms`, `http_5xx_rate` (share of responses), `order_queue_backlog`
(orders waiting to be fulfilled), `memory_used_ratio` (of the checkout service's limit) and
`stock_level{sku}` (sold with the orders, refilled by scheduled deliveries).

Modules: `rhythm` (noise, daily and weekly profiles), `scenarios` (incident kinds, what they
touch, the `demo` and `week` schedules), `stock` (deliveries and levels), `model` (every
series' values), `labels` (incidents as plain data), `source` (the plugin class).
"""

from alertd import hookimpl

from .labels import Effect, Label
from .rhythm import daily_profile
from .scenarios import DEMO_INCIDENTS, EFFECTS, SCENARIOS, WEEK_INCIDENTS, WEEK_START, ActiveIncident, IncidentSpec
from .source import ShopSim

DEFAULT_INCIDENTS = DEMO_INCIDENTS  # the name of alertd 0.1


@hookimpl
def register_sources(register):
    register(ShopSim)


__all__ = ["ShopSim", "IncidentSpec", "ActiveIncident", "Label", "Effect", "DEMO_INCIDENTS", "DEFAULT_INCIDENTS",
           "WEEK_INCIDENTS", "WEEK_START", "SCENARIOS", "EFFECTS", "daily_profile"]
