"""Tracking and analytics: stable ids for detections, zone presence and line counts."""
from .tracker import Tracker

__all__ = ["Tracker"]
