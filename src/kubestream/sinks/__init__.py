"""kubestream.sinks"""
