"""kubestream.state"""
