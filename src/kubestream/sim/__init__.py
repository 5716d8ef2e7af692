"""A simulated Kubernetes cluster: a faithful API server, a workload generator and a node log
writer, with fault injection. A separate world: the agent only talks to it over HTTP and files.
"""
