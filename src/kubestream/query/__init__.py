"""Reading the archive back: ``kubestream query`` (SQL on DuckDB) and ``kubestream timeline``.

The archive is listed and read through the sinks' own readers (file, S3, GCS, Azure: one
credential chain for writing and reading) and decoded with the pipeline's codecs; every format
(NDJSON, kubestream or k8stream protobuf, Parquet, compacted or not) is turned into one flat shape
per stream (``query.shape``) before DuckDB sees it, so one SQL works on every archive.
"""
