"""The cluster's API semantics and storage: the resource registry and schemas, the etcd-like
keyspace, create/update/patch/delete with defaults, validation and managedFields, selectors,
and watch sessions."""
