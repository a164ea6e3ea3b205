"""Migrations of the fitted-model tables (their own sqlite-utils migration set, "alertd-models",
applied after the core set): append, never edit."""

from sqlite_utils import Migrations

model_migrations = Migrations("alertd-models")


@model_migrations()
def m001_models(db):
    # One row per rule: the latest fitted model of its detector, with what it was fitted on.
    db["models"].create({
        "rule": str, "detector": str, "version": str, "params": str, "format": int, "fitted_at": float,
        "saved_at": float, "series": int, "train_rows": int, "fit_seconds": float, "size": int,
        "blob": bytes,
    }, pk="rule")
