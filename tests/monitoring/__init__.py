"""Tests of what an operator monitors the driver with: the PromQL join of dcgm-exporter's series
to the pods of claims, the chart's alerts, its Grafana dashboard, and docs/monitoring.md.

``promtool`` builds Prometheus' own ``promtool`` (``hack/build-promtool.sh``, cached outside the
clone) and runs its rule checker and rule tests; ``exposition`` turns Prometheus exposition text
into the input series of a rule test; ``exported`` names every metric the code exports.
"""
