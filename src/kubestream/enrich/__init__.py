"""kubestream.enrich"""
