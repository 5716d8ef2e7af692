"""kubestream.cli"""
