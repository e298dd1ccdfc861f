"""Clip scoring for Shotbank validators.

This package will hold the open_clip model factory with SHA-256-pinned weights, frame
sampling, the scene, lighting, camera and audio scorers, the junk detectors, and the
validator node that leases jobs from the backend over HTTP and submits signed reports.
It has no modules yet.
"""
