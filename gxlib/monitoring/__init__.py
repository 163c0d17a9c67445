"""Monitoring as code (SPEC §4–§7): the metric catalog and SLOs, the 18 alert rules, the scrape jobs, the
Grafana dashboard, the renderer of the committed artifacts, and the local Prometheus/Alertmanager stack."""
