"""Routing (Alertmanager's `dispatch`): the route tree, groups and their timer, the flush
pipeline (silences, inhibition, time intervals, notification log, outbox) and notices.
"""
