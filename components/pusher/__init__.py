"""The Pusher component: publishes a blessed model as a new serving version."""

from components.pusher.component import Pusher, PusherParameters

__all__ = ["Pusher", "PusherParameters"]
