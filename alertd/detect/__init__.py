"""The numeric kit a detector plugin may use: seasonal features, robust statistics,
calibration, PyOD models and their fitting, per-series state, time zones and slots.
"""
