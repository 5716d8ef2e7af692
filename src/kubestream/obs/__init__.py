"""kubestream.obs"""
