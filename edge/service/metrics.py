"""Prometheus metrics for /metrics, read from the pipeline's status() at each scrape."""
from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric


class StatusCollector:
    """Prometheus metrics read from the pipeline's status() at each scrape."""

    def __init__(self, status: Callable[[], dict]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        """The metric families for one scrape."""
        s = self.status()
        sources, sinks = s.get("sources") or {}, s.get("sinks") or {}
        for key, name, doc in (("captured", "edge_source_frames_captured", "Frames captured"),
                               ("inferred", "edge_source_frames_inferred", "Frames inferred"),
                               ("dropped", "edge_source_frames_dropped", "Frames dropped before inference"),
                               ("reconnects", "edge_source_reconnects", "Source reconnections"),
                               ("skipped", "edge_source_inputs_skipped",
                                "Inputs skipped (unreadable or oversized images, frames missing from a cut video)")):
            family = CounterMetricFamily(name, f"{doc}, per source", labels=["source"])
            for sid, src in sources.items():
                family.add_metric([str(sid)], src.get(key) or 0)
            yield family
        connected = GaugeMetricFamily("edge_source_connected", "1 while the source is connected", labels=["source"])
        for sid, src in sources.items():
            connected.add_metric([str(sid)], 1.0 if src.get("connected") else 0.0)
        yield connected
        for key in ("published", "failed", "dropped"):
            family = CounterMetricFamily(f"edge_sink_events_{key}", f"Events {key}, per sink", labels=["sink"])
            for name, counts in sinks.items():
                family.add_metric([str(name)], counts.get(key) or 0)
            yield family
        yield CounterMetricFamily("edge_inferred", "Frames inferred, all sources", value=s.get("inferred") or 0)
        yield CounterMetricFamily("edge_inferences", "Inference runs (a batch counts once); edge_inferred_total / "
                                  "edge_inferences_total is the batch fill", value=(s.get("loop") or {}).get("inferences") or 0)
        yield GaugeMetricFamily("edge_fps", "Inferred frames per second", value=s.get("fps") or 0.0)
        reloads = CounterMetricFamily("edge_model_reloads", "Model reloads (failed: the old model kept running)",
                                      labels=["result"])
        for result in ("succeeded", "failed"):
            reloads.add_metric([result], (s.get("model_reloads") or {}).get(result) or 0)
        yield reloads
        latency = Metric("edge_latency_seconds", "Latency quantiles per stage", "summary")
        for stage, quantiles in (s.get("latency_ms") or {}).items():
            for key, q in (("p50", "0.5"), ("p99", "0.99")):
                if quantiles.get(key) is not None:
                    latency.add_sample("edge_latency_seconds", {"stage": stage, "quantile": q}, quantiles[key] / 1e3)
        yield latency
        yield from _analytics_metrics(s.get("analytics") or {})
        model = s.get("model") or {}
        yield InfoMetricFamily("edge_model", "The model being run", value={k: str(v) for k, v in model.items()})


def _analytics_metrics(analytics: dict) -> Iterator[Metric]:
    """Line crossings, zone occupancy and active tracks per source (sources with tracking on)."""
    crossings = CounterMetricFamily("edge_line_crossings", "Objects that crossed a counting line",
                                    labels=["source", "line", "direction", "class"])
    occupancy = GaugeMetricFamily("edge_zone_objects", "Objects in a zone now", labels=["source", "zone", "class"])
    tracks = GaugeMetricFamily("edge_tracks_active", "Tracked objects in the latest frame", labels=["source"])
    for sid, a in analytics.items():
        tracks.add_metric([str(sid)], a["tracks_active"])
        for line, counts in a["lines"].items():
            for name, per_class in counts["classes"].items():
                for direction in ("in", "out"):
                    crossings.add_metric([str(sid), line, direction, name], per_class[direction])
        for zone, counts in a["zones"].items():
            for name, n in counts["classes"].items():
                occupancy.add_metric([str(sid), zone, name], n)
    yield from (crossings, occupancy, tracks)
