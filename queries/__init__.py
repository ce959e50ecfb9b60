"""Named DuckDB reports shipped with herbx (installed as ``herbx.queries``)."""
