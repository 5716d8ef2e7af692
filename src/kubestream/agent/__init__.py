"""kubestream.agent"""
