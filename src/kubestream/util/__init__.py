"""kubestream.util"""
