"""``optbench report``: records aggregated into cells, tables, charts and exports (no rendering to a terminal)."""
