"""kubestream.pipeline"""
