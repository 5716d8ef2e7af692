"""kubestream.sources: where records come from.

``EventsSource`` (events.py) exports one record per Kubernetes Event occurrence change, exactly
once; its parts are the decoder (event_decode.py), the filters (event_filters.py) and the
persisted per-uid state (event_state.py).
"""

from kubestream.sources.events import EventsSource

__all__ = ["EventsSource"]
