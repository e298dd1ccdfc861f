"""Media ingest for Shotbank.

This package will hold what happens to a clip between the upload and the scoring
queue: the tus 1.0 upload receiver, magic-byte sniffing, PyAV probing in a
resource-limited subprocess, content addressing (CIDv1, raw leaves), the ``BlobStore``
interface with its local and Kubo implementations, and bulk import.
It has no modules yet.
"""
