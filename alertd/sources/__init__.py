"""The kit a source plugin may use: HTTP fetches with limits, JMESPath mapping, the
Prometheus text format, push bodies, following log files, the sample checks, and excerpts
of bad input for one-sentence errors.
"""
