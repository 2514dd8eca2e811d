"""Health checks with Route 53's semantics.

``config`` (a HealthCheckConfig checked, with its defaults), ``store`` (health checks in the state
database, with their slots), ``checker`` (one probe of an endpoint, and the rules that turn
results into a status), ``table`` (every status in a shared memfd the workers read), ``monitor``
(the supervisor's loop that probes every check and keeps the table current).
"""
