"""Plugins that keep failing become meta-incidents: a source whose polls fail (raises, hangs
past its `timeout`, returns nothing usable) `failing_after` times in a row, or a detector
that raises while scoring.

`alertd_source_failing{source}` and `alertd_detector_failing{rule}` go through the routes as
any incident (see `alertd.incidents.meta`); the next good poll or score resolves them. The failure
itself is already logged (`source_failed`, `detector_failed`) and counted
(`alertd_source_errors_total`, `alertd_detector_errors_total`); this makes it a page.
Notifiers have their own: `alertd_receiver_failing` (alertd/delivery/receiver_health.py).
"""

from __future__ import annotations

from ..incidents.meta import MetaRule

SOURCE_FAILING = MetaRule("alertd_source_failing")
DETECTOR_FAILING = MetaRule("alertd_detector_failing")


class PluginHealth:
    """Opens and resolves the failing-plugin meta-incidents of one engine."""

    def __init__(self, engine, failing_after: int = 3):
        self.engine, self.failing_after = engine, failing_after

    def source_failed(self, name: str, error: str):
        """After a failed poll; returns the engine's TickResult (notices to dispatch) or None."""
        health = self.engine.source_health.get(name)
        if health is None or health.consecutive_errors < self.failing_after:
            return None
        return self.engine.meta_incident(
            SOURCE_FAILING, {"source": name}, True,
            f'the source "{name}" failed {health.consecutive_errors} polls in a row: {error}')

    def source_ok(self, name: str):
        return self.engine.meta_incident(SOURCE_FAILING, {"source": name}, False,
                                         f'the source "{name}" answers again')

    def detectors(self, before: dict[str, str]):
        """After a tick: open or resolve per rule whose detector started or stopped failing."""
        now, results = self.engine.detector_errors, []
        for rule, error in now.items():
            if before.get(rule) != error:
                results.append(self.engine.meta_incident(
                    DETECTOR_FAILING, {"rule": rule}, True,
                    f'the detector of rule "{rule}" failed: {error}'))
        for rule in set(before) - set(now):
            results.append(self.engine.meta_incident(DETECTOR_FAILING, {"rule": rule}, False,
                                                     f'the detector of rule "{rule}" scores again'))
        return results
