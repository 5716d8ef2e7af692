"""``python -m kubestream.sim``: run the simulated API server (see kubestream.sim.cli)."""

import sys

from kubestream.sim.cli import main

sys.exit(main())
