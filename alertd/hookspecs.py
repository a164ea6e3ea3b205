"""The hook specifications every alertd plugin may implement.

A plugin is a module (or any object) with functions decorated by `alertd.hookimpl` and named
like the specs below. Each hook receives a `register` callable; the plugin calls it once per
class it provides. Hookimpls take only the arguments they use.

    from alertd import hookimpl
    from alertd.base import Source

    class Weather(Source):
        type_name = "weather"
        ...

    @hookimpl
    def register_sources(register):
        register(Weather)
"""

import pluggy

hookspec = pluggy.HookspecMarker("alertd")
hookimpl = pluggy.HookimplMarker("alertd")


@hookspec
def register_sources(register):
    """Register source classes: call `register(cls)` for each `alertd.base.Source` subclass.

    A source collects samples (metric name, labels, timestamp, value) on a schedule. Its
    `type_name` is the `type:` users write under `sources:`; it must be unique.
    """


@hookspec
def register_detectors(register):
    """Register detector classes: call `register(cls)` for each `alertd.base.Detector` subclass.

    A detector scores a batch of series of one rule into calibrated scores in [0, 1]. Its
    `type_name` is the `type:` users write under a rule's `detector:`; it must be unique.
    """


@hookspec
def register_notifiers(register):
    """Register notifier classes: call `register(cls)` for each `alertd.base.Notifier` subclass.

    A notifier delivers a `Notification` to one integration (Slack, email, ...). Its
    `type_name` is the `type:` users write in a receiver's list; it must be unique.
    """
