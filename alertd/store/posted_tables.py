"""Columns for alerts posted to the Alertmanager API (their own migration set).

Applied after the routing set; append migrations, never edit one. A posted alert is an
incident with cause "posted"; it also keeps `ends_at` (when it resolves unless it is posted
again, Alertmanager's endsAt) and `generator_url` (the sender's link), so a restart goes on
resolving it on time.
"""

from sqlite_utils import Migrations

posted_migrations = Migrations("alertd-posted-alerts")


@posted_migrations()
def m001_ends_at_and_generator_url(db):
    db["incidents"].add_column("ends_at", float)
    db["incidents"].add_column("generator_url", str)
