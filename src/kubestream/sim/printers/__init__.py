"""Table printers: per-kind columns and cells after kube-apiserver's ``pkg/printers``, and ages as
Table cells print them."""
