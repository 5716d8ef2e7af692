"""Reading and compacting the archive the agent wrote.

``catalog.live_keys`` says which listed objects are data (compacted files replace the sources
they cover); ``read`` decodes one object of any format into records or Arrow; ``compact``
rewrites closed partitions into a few Parquet files, exactly once under crashes.
"""
