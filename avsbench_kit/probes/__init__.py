"""Attention probes: capture attention in any model and measure dissipation."""

from avsbench_kit.probes.capture import AttentionRecord, AttentionRecorder, capture_attention
from avsbench_kit.probes.metrics import DIVERSITY_THRESHOLD, SiteMetrics, site_metrics

__all__ = ["AttentionRecord", "AttentionRecorder", "capture_attention", "DIVERSITY_THRESHOLD", "SiteMetrics", "site_metrics"]
