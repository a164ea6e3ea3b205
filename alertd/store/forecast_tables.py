"""Columns for early warnings (the `forecast` detector's will_cross), their own migration set.

Applied after the posted-alerts set; append migrations, never edit one. An early warning is
an incident about the future: `crossing_at` keeps when its line was expected to be crossed,
as of its latest warning, so notices, the API and `alertd incidents show` can say it after a
restart too.
"""

from sqlite_utils import Migrations

forecast_migrations = Migrations("alertd-forecasts")


@forecast_migrations()
def m001_crossing_at(db):
    db["incidents"].add_column("crossing_at", float)
