"""Two visits of one patient: register the follow-up onto the baseline, match lesions, suggest a response.

Layers: this package sits with batch/net; it uses io, transforms, inference, measure and export, never cli.
"""
