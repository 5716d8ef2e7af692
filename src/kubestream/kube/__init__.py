"""kubestream.kube"""
