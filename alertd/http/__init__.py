"""The daemon's HTTP side: a small h11 server, the health/metrics/JSON API and the pages for on-call."""
