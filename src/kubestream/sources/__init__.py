"""kubestream.sources"""
