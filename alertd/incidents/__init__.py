"""Incidents: the alert state machine (`tracker`), flap detection, acknowledge/resolve
actions shared by the CLI and the API, and meta-incidents about alertd itself.
"""
