"""Read-only views of the warehouse for people: what the dashboard (and later the API) shows.

Each module answers one page's questions with DuckDB over the Parquet the pipeline wrote, with the
filters pushed into SQL and a row limit on every per-VM query, so a million-VM day never travels
to the caller whole. Nothing here writes, calls a cloud or a model, or imports Streamlit or Dagster.
"""
