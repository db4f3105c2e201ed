"""Reports from the call records and the queue history: KPIs from plain rows (kpis), the HTML page (html)."""
