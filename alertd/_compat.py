"""Old module paths of alertd 0.1 (before the package layout of issue 14), for one release.

`import alertd.dispatch` (or unpickling a model stored under an old path) keeps working: a
finder at the end of `sys.meta_path` answers only for the old names below, hands back the
module that now holds the code, and warns with a DeprecationWarning naming the new path.
(Alertmanager keeps moved types importable the same way, through aliases in one place.)
Modules that became a package of the same name (`alertd.config`, `alertd.render`,
`alertd.engine`, `alertd.daemon`, `alertd.backtest`, `alertd.cli`) export their old names
from the package instead; the CLI's `alertd.commands.*` modules have no alias.

`loads(blob)` unpickles with the same table, so a fitted model stored by an older alertd
loads without a warning and no rule warms up again after an upgrade; it also reads models
stored in pieces (alertd/model_blob.py) beside the plain pickles every release wrote before.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import io
import pickle
import sys
import warnings

from .model_blob import is_pieces, split

MOVED = {
    "alertd.absence": "alertd.engine.absence",
    "alertd.alerting": "alertd.engine.alert_stage",
    "alertd.alerts": "alertd.incidents.tracker",
    "alertd.anomaly_model": "alertd.detect.anomaly_model",
    "alertd.backfill": "alertd.daemon.backfill",
    "alertd.backtest_plot": "alertd.backtest.plot",
    "alertd.calibration": "alertd.detect.calibration",
    "alertd.clockstep": "alertd.daemon.clock_steps",
    "alertd.config_http": "alertd.config.http",
    "alertd.config_types": "alertd.config.types",
    "alertd.daemon_health": "alertd.daemon.health",
    "alertd.default_plugins._http": "alertd.http_notifier",
    "alertd.default_plugins._payloads": "alertd.render.payloads",
    "alertd.default_plugins.absent": "alertd.default_plugins.detectors.absent",
    "alertd.default_plugins.alertmanager": "alertd.default_plugins.notifiers.alertmanager",
    "alertd.default_plugins.combine": "alertd.default_plugins.detectors.combine",
    "alertd.default_plugins.command": "alertd.default_plugins.sources.command",
    "alertd.default_plugins.command_notifier": "alertd.default_plugins.notifiers.command",
    "alertd.default_plugins.console": "alertd.default_plugins.notifiers.console",
    "alertd.default_plugins.csv_replay": "alertd.default_plugins.sources.csv_replay",
    "alertd.default_plugins.email_smtp": "alertd.default_plugins.notifiers.email_smtp",
    "alertd.default_plugins.http_json": "alertd.default_plugins.sources.http_json",
    "alertd.default_plugins.logfile": "alertd.default_plugins.sources.logfile",
    "alertd.default_plugins.pagerduty": "alertd.default_plugins.notifiers.pagerduty",
    "alertd.default_plugins.prometheus": "alertd.default_plugins.sources.prometheus",
    "alertd.default_plugins.push": "alertd.default_plugins.sources.push",
    "alertd.default_plugins.pyod_detector": "alertd.default_plugins.detectors.pyod_detector",
    "alertd.default_plugins.rate": "alertd.default_plugins.detectors.rate",
    "alertd.default_plugins.seasonal": "alertd.default_plugins.detectors.seasonal",
    "alertd.default_plugins.shop_sim": "alertd.default_plugins.sources.shop_sim",
    "alertd.default_plugins.slack": "alertd.default_plugins.notifiers.slack",
    "alertd.default_plugins.sql": "alertd.default_plugins.sources.sql",
    "alertd.default_plugins.threshold": "alertd.default_plugins.detectors.threshold",
    "alertd.default_plugins.webhook": "alertd.default_plugins.notifiers.webhook",
    "alertd.default_plugins.zscore": "alertd.default_plugins.detectors.zscore",
    "alertd.detections": "alertd.engine.detections",
    "alertd.digest": "alertd.delivery.digest",
    "alertd.dispatch": "alertd.delivery.worker",
    "alertd.features": "alertd.detect.features",
    "alertd.flapping": "alertd.incidents.flapping",
    "alertd.httpfetch": "alertd.sources.http_fetch",
    "alertd.incident_actions": "alertd.incidents.actions",
    "alertd.jsonmap": "alertd.sources.json_map",
    "alertd.lifecycle": "alertd.daemon.lifecycle",
    "alertd.memory": "alertd.detect.series_memory",
    "alertd.meta": "alertd.incidents.meta",
    "alertd.nab": "alertd.backtest.nab",
    "alertd.nab_run": "alertd.backtest.nab_run",
    "alertd.nodata": "alertd.engine.missing_data",
    "alertd.plugin_health": "alertd.daemon.plugin_health",
    "alertd.promtext": "alertd.sources.promtext",
    "alertd.pushparse": "alertd.sources.push_bodies",
    "alertd.pyod_models": "alertd.detect.pyod_models",
    "alertd.ratelimit": "alertd.delivery.rate_limit",
    "alertd.receiver_health": "alertd.delivery.receiver_health",
    "alertd.reload": "alertd.daemon.reload",
    "alertd.router": "alertd.routing.router",
    "alertd.routing.config": "alertd.config.routing",
    "alertd.routing.timeintervals": "alertd.config.time_intervals",
    "alertd.rule_runtime": "alertd.engine.rule_runtime",
    "alertd.runtime": "alertd.daemon.gc_tuning",
    "alertd.sample_check": "alertd.sources.sample_checks",
    "alertd.scheduler": "alertd.daemon.scheduler",
    "alertd.schema": "alertd.config.schema",
    "alertd.scoring": "alertd.engine.scoring",
    "alertd.sdnotify": "alertd.daemon.sdnotify",
    "alertd.shard": "alertd.config.shards",
    "alertd.silences": "alertd.routing.silences",
    "alertd.sources_util": "alertd.sources.common",
    "alertd.store.model_tables": "alertd.store.fitted_model_migrations",
    "alertd.store.models": "alertd.store.fitted_models",
    "alertd.tail": "alertd.sources.follow",
    "alertd.training": "alertd.engine.training",
    "alertd.view": "alertd.render.view",
    "alertd.windows": "alertd.engine.windows",
    "alertd.yamlsrc": "alertd.config.yamlsrc",
}
# names that left their old module for another one than the module's new home
MOVED_NAMES = {("alertd.flapping", "FlapSettings"): "alertd.config.types"}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of old module paths with the module's new home (and a warning)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        # stacklevel 2: the `import` line (warnings skips the import system's own frames)
        warnings.warn(f"{spec.name} moved to {new}: import it from there (the old path goes away "
                      "in the next release of alertd)", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        pass  # the module is already loaded under its new name


def install() -> None:
    """Put the finder at the end of `sys.meta_path` (once): real modules are found first."""
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())


class _Unpickler(pickle.Unpickler):
    """Finds classes pickled under an old module path at their new home."""

    def find_class(self, module, name):
        module = MOVED_NAMES.get((module, name)) or MOVED.get(module, module)
        return super().find_class(module, name)


def loads(blob):
    """`pickle.loads` that maps old alertd module paths to new ones; `blob` is a plain pickle
    or one in pieces (alertd/model_blob.py), whose arrays then are views of `blob`."""
    if is_pieces(blob):
        data, buffers = split(blob)
        return _Unpickler(io.BytesIO(data), buffers=buffers).load()
    return _Unpickler(io.BytesIO(blob)).load()
