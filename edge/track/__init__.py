"""Tracking and analytics: stable ids for detections, zone presence and line counts."""
from .tracker import Tracker
from .zones import ANCHORS, Analytics, Line, Zone, anchor_points, parse_line, parse_zone

__all__ = ["Tracker", "Analytics", "Zone", "Line", "parse_zone", "parse_line", "anchor_points", "ANCHORS"]
