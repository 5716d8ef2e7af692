"""The kubestream command line (``kubestream = kubestream.cli.main:main``)."""
