"""The nodes: kubelets (one HTTPS listener per Node), static and mirror pods, the container log
files a node writes (with their ledger) and the ``pods/log`` endpoint that reads them."""
