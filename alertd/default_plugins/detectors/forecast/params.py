"""The `forecast` detector's settings, their checks, and the checks against the rule's setting
(the source's interval, the store's retention)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from alertd.base import RuleSetting
from alertd.config.schema import Duration, ParamError
from alertd.detect.forecast import Line
from alertd.detect.forecast_library import INSTALL
from alertd.detect.forecast_library import available as library_available
from alertd.detect.seasons import DAY, WEEK, utc_offset
from alertd.durations import format_duration

LIBRARY_MODELS = ("AutoETS", "AutoTheta", "MSTL", "AutoARIMA")
MODELS = ("profile", "trend") + LIBRARY_MODELS


@dataclass(frozen=True)
class WillCross:
    """An early warning's line: `above` or `below` a level, `within` a horizon, on the
    central path or (`confidence`) the interval's bound towards the line."""

    above: float | None = None
    below: float | None = None
    within: Duration | None = None
    confidence: float | None = None

    def check(self) -> None:
        if self.above is None and self.below is None:
            raise ParamError("above", "will_cross needs a line: add below: LEVEL (warn before the value "
                             "falls under it) or above: LEVEL")
        if self.above is not None and self.below is not None:
            raise ParamError("below", "will_cross takes one line, above or below; write a second rule "
                             "for the other side")
        if self.within is None:
            raise ParamError("within", "will_cross needs within: the horizon to warn ahead of (e.g. 2h)")
        if self.within <= 0:
            raise ParamError("within", "within must be a duration above 0s, e.g. 2h")
        if self.confidence is not None and not 0.5 <= self.confidence < 1:
            raise ParamError("confidence", "confidence is the interval whose bound warns, between 0.5 and 1 "
                             f"(e.g. 0.8), got {self.confidence:g}")

    def line(self) -> Line:
        below = self.below is not None
        return Line(float(self.below if below else self.above), below, float(self.within), self.confidence)


@dataclass(frozen=True)
class ForecastParams:
    """The model, the warning line or interval level, seasons and the training schedule."""

    model: Literal["profile", "trend", "AutoETS", "AutoTheta", "MSTL", "AutoARIMA"] = "profile"
    will_cross: WillCross | None = None
    level: float = 0.99
    direction: Literal["both", "up", "down"] = "both"
    seasonality: Literal["auto", "daily", "weekly", "none"] = "auto"
    timezone: str = "UTC"
    flow: Literal["none", "drops", "rises"] = "none"
    range: Duration = Duration(3600)
    window: int = 240
    min_history: int = 30
    train_span: Duration = Duration(7 * 86400)
    train_points: int = 10_080
    retrain: Duration | None = Duration(3600)
    retrain_points: int | None = None

    def check(self) -> None:
        if self.model in LIBRARY_MODELS and not library_available():
            raise ParamError("model", f"model {self.model} is fitted by statsforecast, which is not installed; "
                             f"run {INSTALL} or use model: profile")
        if not 0.5 <= self.level < 1:
            raise ParamError("level", f"level is the prediction interval, between 0.5 and 1 (e.g. 0.99), "
                             f"got {self.level:g}")
        if self.flow != "none":
            if self.will_cross is None:
                raise ParamError("flow", "flow forecasts what a level loses or gains to warn before it "
                                 "reaches a line; add will_cross")
            if self.model == "trend":
                raise ParamError("flow", "flow needs a fitted model; use model: profile (or a library model)")
            if (self.flow == "drops") != (self.will_cross.below is not None):
                side = "below" if self.flow == "drops" else "above"
                raise ParamError("flow", f"flow: {self.flow} warns before the value gets {side} a line; "
                                 f"write will_cross.{side}")
        if self.model == "trend":
            if self.range <= 0:
                raise ParamError("range", "range must be a duration above 0s (the line is fitted over it)")
            if self.window < 2:
                raise ParamError("window", f"window must be at least 2 points, got {self.window}")
        if self.min_history < 2:
            raise ParamError("min_history", f"min_history must be at least 2 points, got {self.min_history}")
        if self.train_points < self.min_history:
            raise ParamError("train_points", f"train_points ({self.train_points}) must be at least "
                             f"min_history ({self.min_history})")
        if self.train_span <= 0:
            raise ParamError("train_span", "train_span must be a duration above 0s, e.g. 7d")
        need = {"daily": 2 * DAY, "weekly": 2 * WEEK}.get(self.seasonality)
        if need and self.model != "trend" and self.train_span < 0.99 * need:
            raise ParamError("seasonality", f"a {self.seasonality} season needs {format_duration(need)} of "
                             f"history, but train_span is {format_duration(self.train_span)}; raise "
                             "train_span (and retention) or use seasonality: auto")
        if self.retrain is None and self.retrain_points is None:
            raise ParamError("retrain", "set retrain (a duration) or retrain_points (a count), or the "
                             "forecast is never refitted")
        if self.retrain is not None and self.retrain <= 0:
            raise ParamError("retrain", "retrain must be a duration above 0s")
        if self.retrain_points is not None and self.retrain_points < 1:
            raise ParamError("retrain_points", f"retrain_points must be at least 1, got {self.retrain_points}")
        try:
            utc_offset(self.timezone, 0.0)
        except Exception:
            raise ParamError("timezone", f'unknown timezone "{self.timezone}"; use a name like UTC or '
                             "Europe/Berlin") from None



def setting_problems(params, setting: RuleSetting) -> list[tuple[str, str]]:
    problems = []
    every, keep = setting.interval, setting.retention
    wc = params.will_cross
    if wc is not None and every and wc.within < every:
        problems.append(("will_cross.within", f"within ({format_duration(wc.within)}) is shorter than the "
                         f"time between two points of the source ({format_duration(every)}): the warning "
                         f"could only come after the line is crossed; make within at least {format_duration(every)}"))
    if params.model == "trend":
        if every and params.range < 2 * every:
            problems.append(("range", f"range ({format_duration(params.range)}) holds fewer than two points "
                             f"of the source (one every {format_duration(every)}); make it at least "
                             f"{format_duration(2 * every)}"))
        elif every and params.window * every < params.range:
            need = int(math.ceil(params.range / every))
            problems.append(("window", f"range {format_duration(params.range)} holds {need} points of the "
                             f"source (one every {format_duration(every)}) but window keeps "
                             f"{params.window}; raise window to {need}"))
        return problems
    need = {"daily": 2 * DAY, "weekly": 2 * WEEK}.get(params.seasonality)
    if need and keep < 0.99 * need:
        problems.append(("seasonality", f"a {params.seasonality} season needs {format_duration(need)} of "
                         f"history, but the store keeps {format_duration(keep)} (retention); raise "
                         f"retention to at least {format_duration(need + DAY)} or use seasonality: auto"))
    elif params.train_span > keep * 1.0001:
        problems.append(("train_span", f"train_span ({format_duration(params.train_span)}) is longer than "
                         f"the store keeps ({format_duration(keep)}, retention); shorten it or raise retention"))
    return problems
