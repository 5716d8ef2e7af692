"""The workload generator: a deterministic cluster of controllers' and kubelets' writes, with the
event recorders of client-go and the ledger of every event written."""
